"""``helpdesk reset-page``: the page a reset link opens, end to end.

The real command runs in a subprocess on a free port, with a helpdesk.toml naming a real
slapd (tests/servers.py) as the providers' directory. The reset link comes from a real
SMTP capture (aiosmtpd) of ``helpdesk outbox send``; the phone code from the terminal of
``ticket act … give-code-by-phone``. Debian's headless Chromium (Selenium) fills the form;
the new password is then tried with a real LDAP bind. The limits, the CSRF check and the
forwarded headers are driven over plain HTTP (urllib), as a script or an attacker would.
"""

from __future__ import annotations

import email
import html
import http.client
import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from email import policy as email_policy

import pytest
from selenium.common.exceptions import WebDriverException
from sqlmodel import select

from helpdesk.storage import db
from helpdesk.storage.models import Event, ResetToken
from tests import servers
from tests.conftest import ROOT, Helpdesk
from tests.scenarios.test_communesplone import run_on_a_terminal
from tests.test_delivery import SMTPServer
from tests.test_serve import CHROMEDRIVER, CHROMIUM, TIMEOUT, connects, needs_browser
from tests.test_ssh import Reader, free_port, kill_tree, wait_for

RESET_URL = "https://reset.example/aide/?token="  # the public address, behind the proxy
OLD = "ancien-Mot-de-passe-1"
NEW = "Nouveau mot de passe <script>&é 2026"  # spaces, markup and accents: any text works
CODE = re.compile(r"\b[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}\b")


# --- the running page ----------------------------------------------------------------------------


class Page:
    def __init__(self, url: str, env: dict, *options: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "helpdesk",
                "--db",
                url,
                "reset-page",
                "--listen",
                f"127.0.0.1:{self.port}",
                *options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        self.out, self.err = Reader(self.proc.stdout), Reader(self.proc.stderr)

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"reset-page ended with {self.proc.returncode}:\n{self.output()}")
            return connects("127.0.0.1", self.port)

        wait_for("the reset page to listen", up, TIMEOUT, self.output)

    def output(self) -> str:
        return (self.out.data + self.err.data).decode("utf-8", "replace")

    def local(self, public_link: str) -> str:
        """A public link as the proxy passes it on: same path and query, on this port."""
        assert public_link.startswith("https://reset.example/aide/?token="), public_link
        return self.base + public_link[len("https://reset.example") :]


class Client:
    """A plain HTTP client with its own cookies (a browser without a browser)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, url: str, data: dict | None = None, headers: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, html.unescape(r.read().decode())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, html.unescape(exc.read().decode())


def csrf_of(page_html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def slapd():
    if servers.SLAPD is None or servers.LDAPADD is None:
        pytest.skip("slapd or ldap-utils is not installed (apt-get install -y slapd ldap-utils)")
    with servers.slapd() as server:
        server.add_user("jdupont", OLD, "jean@example.org")
        server.add_user("cpas-namur", OLD, "informatique@cpas-namur.example")
        yield server


# slapd's ppolicy in the strict directory: at least 20 characters, checked (the page's own
# minimum, the provider's, stays 12).
STRICT_POLICY = "pwdMinLength: 20\npwdCheckQuality: 2\n"


@pytest.fixture
def strict_slapd():
    """A slapd whose password policy asks more than the provider does, bound to by a
    directory account that is not the rootdn (slapd exempts its rootdn from ppolicy)."""
    if servers.SLAPD is None or servers.LDAPADD is None:
        pytest.skip("slapd or ldap-utils is not installed (apt-get install -y slapd ldap-utils)")
    with servers.slapd(policy=STRICT_POLICY) as server:
        server.add_user("jdupont", OLD, "jean@example.org")
        yield server


@pytest.fixture
def site(db_url, tmp_path, request):
    """The database, a helpdesk.toml naming slapd for Wigii and CommunesPlone, the CLI, and
    a function starting the page. A test asking for ``strict_slapd`` gets that directory."""
    if "strict_slapd" in request.fixturenames:
        slapd = request.getfixturevalue("strict_slapd")
        toml = slapd.connector_toml(policies='["wigii", "communesplone"]', as_helpdesk=True)
    else:
        slapd = request.getfixturevalue("slapd")
        toml = slapd.connector_toml(policies='["wigii", "communesplone"]')
    config = tmp_path / "helpdesk.toml"
    config.write_text(toml)
    hd = Helpdesk(db_url, tmp_path)
    hd.env["HELPDESK_CONFIG"] = str(config)
    hd.account("jdupont", "wigii", "jean@example.org")
    hd.ok("policy", "set", "wigii", f"reset_url={RESET_URL}")
    pages = []

    def start(*options: str) -> Page:
        page = Page(db_url, dict(hd.env), *options)
        pages.append(page)
        return page

    yield hd, start
    for page in pages:
        kill_tree(page.proc)
        assert "Traceback" not in page.output(), page.output()


def mailed_link(hd: Helpdesk) -> tuple[str, int]:
    """Open a reset request from the registered contact, send the link, deliver it to a real
    SMTP server: the link as the mail carries it, and the ticket."""
    t = hd.open("password-reset", "wigii", "jdupont", "jean@example.org")
    hd.act(t["id"], "issue-reset-link")
    smtp = SMTPServer(free_port()).start()
    try:
        env = dict(hd.env, HELPDESK_SMTP_HOST="127.0.0.1", HELPDESK_SMTP_PORT=str(smtp.port))
        p = subprocess.run(
            [sys.executable, "-m", "helpdesk", "--db", hd.url, "outbox", "send", "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        [raw] = [m["raw"] for m in smtp.messages]
    finally:
        smtp.stop()
    msg = email.message_from_bytes(raw, policy=email_policy.default)
    body = msg.get_body(("plain",)).get_content()
    [link] = [w for w in body.split() if w.startswith(RESET_URL)]
    return link, t["id"]


def events(url: str, *actions: str) -> list[Event]:
    with db.read_session(url) as s:
        rows = s.exec(select(Event).where(Event.action.in_(actions)).order_by(Event.id))
        return list(rows)


def all_events_text(url: str) -> str:
    with db.read_session(url) as s:
        return json.dumps(
            [[e.action, e.note, e.data] for e in s.exec(select(Event))], ensure_ascii=False
        )


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1000,900",
        "--lang=fr-FR",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(
        service=Service(
            executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
        ),
        options=options,
    )
    try:
        yield driver
    finally:
        driver.quit()


def css(driver, selector):
    return driver.find_element("css selector", selector)


def next_page(driver, act) -> None:
    """Do ``act`` (a click) and wait until the browser shows the next page, fully loaded."""
    driver.execute_script("window.__before = true")
    act()

    def loaded():
        try:
            return driver.execute_script(
                "return window.__before === undefined && document.readyState === 'complete'"
            )
        except WebDriverException:  # between two documents
            return False

    wait_for("the next page", loaded, TIMEOUT)


def submit(driver, navigates: bool = True) -> None:
    """Press the form's button and wait for the next page (unless the browser holds it back)."""
    button = css(driver, "button[type=submit]")
    if navigates:
        next_page(driver, button.click)
    else:
        button.click()


def submit_passwords(driver, first: str, second: str, navigates: bool = True) -> None:
    css(driver, "#password").send_keys(first)
    css(driver, "#confirm").send_keys(second)
    submit(driver, navigates)


def main_text(driver) -> str:
    return css(driver, "main").text


# --- the link -------------------------------------------------------------------------------------


@needs_browser
@pytest.mark.slow
def test_a_mailed_link_sets_the_password_once(site, browser, slapd, tmp_path):
    hd, start = site
    page = start()
    link, ticket = mailed_link(hd)
    secret = link[len(RESET_URL) :]

    browser.get(page.local(link))
    assert css(browser, "html").get_attribute("lang") == "fr"
    assert "jdupont" in main_text(browser)
    # Every input has its label; the password's hint gives the provider's minimum.
    for name in ("password", "confirm"):
        label = css(browser, f"label[for={name}]")
        assert label.text and css(browser, f"#{name}").get_attribute("type") == "password"
    assert "12 caractères" in css(browser, "label[for=password]").text
    assert css(browser, "#password").get_attribute("autocomplete") == "new-password"

    # Two different passwords: the error is announced, the field says it is invalid.
    submit_passwords(browser, NEW, NEW + "x")
    alert = css(browser, "[role=alert]")
    assert "diffèrent" in alert.text, page.output()
    assert css(browser, "#confirm").get_attribute("aria-invalid") == "true"
    assert "error" in css(browser, "#confirm").get_attribute("aria-describedby")
    assert browser.title.startswith("Erreur")
    assert slapd.bind("jdupont", OLD)  # nothing changed yet

    # Too short for the provider's minimum: the browser itself holds the form back...
    submit_passwords(browser, "court", "court", navigates=False)
    assert browser.execute_script("return document.getElementById('password').validity.tooShort")
    # ... and the page refuses it too, for a browser that would not.
    browser.execute_script("document.querySelector('form').noValidate = true")
    for name in ("password", "confirm"):
        css(browser, f"#{name}").clear()
    submit_passwords(browser, "court", "court")
    assert "au moins 12 caractères" in css(browser, "[role=alert]").text
    assert css(browser, "#password").get_attribute("aria-invalid") == "true"

    submit_passwords(browser, NEW, NEW)
    browser.save_screenshot(str(tmp_path / "done.png"))
    assert "Votre mot de passe a été changé" in main_text(browser), main_text(browser)
    assert slapd.bind("jdupont", NEW)
    assert not slapd.bind("jdupont", OLD)

    # The second time, the link is refused and nothing changes.
    browser.get(page.local(link))
    assert "n'est pas valable" in css(browser, "[role=alert]").text, main_text(browser)
    assert not browser.find_elements("css selector", "#password")
    assert slapd.bind("jdupont", NEW)

    # Audited: set, then spent; then the refused second visit. Never the secret or password.
    [done] = events(hd.url, "reset-password-set")
    assert done.ticket_id == ticket and done.data["status"] == "done"
    assert done.data["connector"] == "directory" and "password set" in done.data["answer"]
    assert [e.ticket_id for e in events(hd.url, "reset-redeemed")] == [ticket]
    refused = events(hd.url, "reset-page-refused")
    assert refused and refused[-1].data["reason"] == "used"
    with db.read_session(hd.url) as s:
        assert all(t.used_at is not None for t in s.exec(select(ResetToken)))
    trail = all_events_text(hd.url)
    for leaked in (secret, NEW, OLD):
        assert leaked not in trail
        assert leaked not in page.output()
    assert hd.ok("audit", "verify")["ok"] is True


@needs_browser
@pytest.mark.slow
def test_a_password_the_directory_refuses_asks_for_another(strict_slapd, site, browser):
    """slapd's ppolicy (pwdMinLength 20, pwdCheckQuality 2) refuses a password the page
    itself accepts (the provider's minimum is 12): the page says so, in the visitor's
    language, the secret is not spent, and a password the directory accepts then works."""
    hd, start = site
    page = start()
    link, ticket = mailed_link(hd)
    secret = link[len(RESET_URL) :]
    weak = "Seize-caracteres"  # 16 characters: enough for the page, not for slapd
    strong = NEW + " et bien assez long"

    browser.get(page.local(link))
    assert "12 caractères" in css(browser, "label[for=password]").text
    submit_passwords(browser, weak, weak)
    alert = css(browser, "[role=alert]")
    assert "a refusé ce mot de passe" in alert.text, main_text(browser)
    assert "trop court ou trop simple" in alert.text and "Choisissez-en un autre" in alert.text
    assert css(browser, "#password").get_attribute("aria-invalid") == "true"
    assert alert.get_attribute("id") in css(browser, "#password").get_attribute("aria-describedby")
    assert browser.title.startswith("Erreur")
    assert css(browser, "#password").get_attribute("value") == ""  # never sent back
    assert strict_slapd.bind("jdupont", OLD) and not strict_slapd.bind("jdupont", weak)

    # Not spent: the form is still there, and audited as refused by the directory.
    [refused] = events(hd.url, "reset-password-failed")
    assert refused.ticket_id == ticket and refused.data["status"] == "refused"
    assert "Password fails quality checking policy" in refused.data["error"]
    assert not events(hd.url, "reset-redeemed", "reset-password-set")
    with db.read_session(hd.url) as s:
        assert [t.used_at for t in s.exec(select(ResetToken))] == [None]

    # The same refusal in English, for a visitor who asked for it.
    next_page(browser, css(browser, "a[hreflang=en]").click)
    assert css(browser, "html").get_attribute("lang") == "en"
    submit_passwords(browser, weak, weak)
    alert = css(browser, "[role=alert]")
    assert "refused this password" in alert.text, main_text(browser)
    assert "Choose another one" in alert.text and "annuaire" not in alert.text

    # A password the directory accepts: changed, and only now the secret is spent.
    submit_passwords(browser, strong, strong)
    assert "Your password has been changed" in main_text(browser), main_text(browser)
    assert strict_slapd.bind("jdupont", strong) and not strict_slapd.bind("jdupont", OLD)
    assert [e.ticket_id for e in events(hd.url, "reset-redeemed")] == [ticket]
    browser.get(page.local(link))
    assert not browser.find_elements("css selector", "#password")  # spent
    trail = all_events_text(hd.url)
    for leaked in (secret, weak, strong):
        assert leaked not in trail and leaked not in page.output()
    assert hd.ok("audit", "verify")["ok"] is True


@needs_browser
@pytest.mark.slow
def test_english_on_request_and_by_the_browser(site, browser):
    hd, start = site
    page = start()
    link, _ticket = mailed_link(hd)
    browser.get(page.local(link))
    next_page(browser, css(browser, "a[hreflang=en]").click)  # the link keeps the secret
    assert css(browser, "html").get_attribute("lang") == "en"
    assert "New password" in css(browser, "label[for=password]").text
    assert "At least 12 characters." in css(browser, "label[for=password]").text
    # A browser that prefers English gets it without asking.
    client = Client()
    status, _h, body = client.request(
        page.base + "/", headers={"Accept-Language": "en-GB,fr;q=0.5"}
    )
    assert status == 200 and '<html lang="en">' in body and "One-time code" in body
    status, _h, body = client.request(page.base + "/", headers={"Accept-Language": "de, fr;q=0.3"})
    assert '<html lang="fr">' in body and "Code à usage unique" in body


# --- the phone code -------------------------------------------------------------------------------


@needs_browser
@pytest.mark.slow
def test_a_phone_code_opens_the_same_page(site, browser, slapd, tmp_path):
    hd, start = site
    hd.account(
        "cpas-namur",
        "communesplone",
        "informatique@cpas-namur.example",
        "--kind",
        "member",
        "--org",
        "CPAS de Namur",
        "--field",
        "signature-date=2025-06-10",
    )
    t = hd.open("password-reset", "communesplone", "cpas-namur", "informatique@cpas-namur.example")
    hd.now = datetime.now(timezone.utc).isoformat()  # the page lives at the real clock too
    code, _stdout, terminal = run_on_a_terminal(
        hd,
        "--as",
        "alice",
        "ticket",
        "act",
        t["id"],
        "give-code-by-phone",
        "--check",
        "called-registered-number",
    )
    assert code == 0, terminal
    secret = CODE.search(terminal).group(0)
    page = start()

    def enter(login: str, typed: str) -> None:
        browser.get(page.base + "/aide/")
        assert css(browser, "label[for=login]").text and css(browser, "label[for=code]").text
        css(browser, "#login").send_keys(login)
        css(browser, "#code").send_keys(typed)
        submit(browser)

    # Another account's login with this code: refused, and no hint that the code exists.
    enter("jdupont", secret)
    assert "ne correspondent à aucun code valable" in css(browser, "[role=alert]").text
    assert css(browser, "#code").get_attribute("aria-invalid") == "true"

    # As read out on the phone, lower case and without dashes works too.
    enter("cpas-namur", secret.replace("-", "").lower())
    assert "cpas-namur" in main_text(browser), main_text(browser)
    submit_passwords(browser, NEW, NEW)
    browser.save_screenshot(str(tmp_path / "code-done.png"))
    assert "Votre mot de passe a été changé" in main_text(browser), main_text(browser)
    assert slapd.bind("cpas-namur", NEW) and not slapd.bind("cpas-namur", OLD)

    enter("cpas-namur", secret)  # spent
    assert "ne correspondent à aucun code valable" in css(browser, "[role=alert]").text
    assert not browser.find_elements("css selector", "#password")
    [done] = events(hd.url, "reset-password-set")
    assert done.ticket_id == t["id"] and done.data["channel"] == "phone"
    assert secret not in all_events_text(hd.url) and NEW not in all_events_text(hd.url)


# --- limits, CSRF, proxies --------------------------------------------------------------------


def test_attempts_are_limited_per_secret_and_per_address(site):
    hd, start = site
    page = start()
    client = Client()
    for _ in range(10):  # the same unknown secret, ten times: refused, not limited
        status, _h, _b = client.request(page.base + "/?token=not-a-secret")
        assert status == 410
    status, headers, body = client.request(page.base + "/?token=not-a-secret")
    assert status == 429 and int(headers["Retry-After"]) > 0
    assert "Trop de tentatives" in body and 'role="alert"' in body
    # Other secrets from the same address go on, up to the address's limit (30).
    for i in range(19):
        assert client.request(page.base + f"/?token=guess-{i}")[0] == 410
    assert client.request(page.base + "/?token=guess-last")[0] == 429
    # A valid link from a limited address waits too, and stays valid.
    link, _t = mailed_link(hd)
    assert client.request(page.local(link))[0] == 429
    other = start()  # another process, other counts: the link still opens the form
    status, _h, body = Client().request(other.local(link))
    assert status == 200 and 'id="password"' in body
    limited = events(hd.url, "reset-page-limited")
    assert sorted(e.data["limit"] for e in limited) == ["address", "secret"]  # once each
    assert "not-a-secret" not in all_events_text(hd.url)


def test_phone_codes_are_limited_per_login(site):
    hd, start = site
    page = start()
    client = Client()
    status, _h, body = client.request(page.base + "/")
    csrf = csrf_of(body)
    for i in range(10):
        status, _h, body = client.request(
            page.base + "/",
            {"csrf": csrf, "step": "code", "login": "cpas-namur", "code": f"AAAA-BBBB-CC{i:02d}"},
        )
        assert status == 400 and "ne correspondent" in body
    status, _h, body = client.request(
        page.base + "/",
        {"csrf": csrf, "step": "code", "login": "CPAS-Namur", "code": "AAAA-BBBB-CCCC"},
    )
    assert status == 429


def test_forged_posts_are_refused(site, slapd):
    hd, start = site
    page = start()
    link, _t = mailed_link(hd)
    secret = link[len(RESET_URL) :]
    form = {"step": "set", "token": secret, "password": NEW, "confirm": NEW}

    # A post without the page's cookie (another site's form, a script): refused.
    stranger = Client()
    status, _h, body = stranger.request(page.base + "/", {**form, "csrf": "0" * 64})
    assert status == 403 and "n'est pas venu de cette page" in body

    # The page's own cookie, but the form's token of another visitor.
    victim, attacker = Client(), Client()
    victim_csrf = csrf_of(victim.request(page.local(link))[2])
    attacker.request(page.base + "/")
    assert attacker.request(page.base + "/", {**form, "csrf": victim_csrf})[0] == 403

    # The right cookie and token, but the browser says the post came from another site.
    status, _h, _b = victim.request(
        page.base + "/", {**form, "csrf": victim_csrf}, headers={"Origin": "https://evil.example"}
    )
    assert status == 403
    status, _h, _b = victim.request(
        page.base + "/", {**form, "csrf": victim_csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    assert slapd.bind("jdupont", OLD)  # nothing was changed
    assert not events(hd.url, "reset-password-set", "reset-redeemed")

    # The same post from the page itself goes through.
    status, _h, body = victim.request(
        page.base + "/", {**form, "csrf": victim_csrf}, headers={"Origin": page.base}
    )
    assert status == 200 and "Votre mot de passe a été changé" in body
    assert slapd.bind("jdupont", NEW)


def test_forwarded_headers_only_from_the_configured_proxy(site):
    hd, start = site
    # No proxy configured: X-Forwarded-For is the client's own claim, and changes nothing.
    page = start()
    client = Client()
    for i in range(30):
        headers = {"X-Forwarded-For": f"203.0.113.{i}", "X-Forwarded-Proto": "https"}
        status, got, _b = client.request(page.base + f"/?token=g{i}", headers=headers)
        assert status == 410 and "__Host-" not in got.get("Set-Cookie", "")
    assert (
        client.request(page.base + "/?token=x", headers={"X-Forwarded-For": "198.51.100.9"})[0]
        == 429
    )

    # Behind a proxy at 127.0.0.1: the address it forwards is the client's, https is believed.
    proxied = start("--proxy", "127.0.0.1")
    c = Client()
    for i in range(30):
        headers = {"X-Forwarded-For": f"198.51.100.7, 203.0.113.{i % 2}"}
        assert c.request(proxied.base + f"/?token=p{i}", headers=headers)[0] == 410
    # 203.0.113.0 and .1 made 15 each: neither is limited; a spoofed first hop is not believed.
    assert (
        c.request(proxied.base + "/?token=q", headers={"X-Forwarded-For": "203.0.113.0"})[0] == 410
    )
    status, got, body = c.request(
        proxied.base + "/", headers={"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    )
    cookie = got["Set-Cookie"]
    assert cookie.startswith("__Host-helpdesk-csrf=") and "Secure" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert got["Strict-Transport-Security"]
    assert "frame-ancestors 'none'" in got["Content-Security-Policy"]
    assert got["Referrer-Policy"] == "same-origin"  # no other site sees the link
    # The request log names the forwarded client and never a query (the server writes its
    # line after the answer: read until it is there).
    deadline = time.monotonic() + 10
    while "203.0.113.5" not in proxied.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "203.0.113.5" in proxied.output() and "token=" not in proxied.output()


def from_address(source: str, url: str, headers: dict | None = None) -> int:
    """GET ``url`` from the loopback address ``source`` (127.0.0.2...: other clients on this
    host, as a proxy or the page sees them): the status."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0)
    )
    try:
        conn.request("GET", parts.path + "?" + parts.query, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


@servers.needs_nginx
def test_behind_a_real_nginx(site, slapd):
    """Debian's nginx in front of the page, configured as the README says, the page trusting
    it (``--proxy 127.0.0.1``): the mailed link, the language link and the form's post all
    work under the proxy's /aide/; the address nginx forwards is the one the limits count;
    a client's own X-Forwarded-For, through the proxy or straight to the page, is not."""
    hd, start = site
    page = start("--proxy", "127.0.0.1")
    with servers.nginx(page.port, "/aide/") as proxy:
        # The whole reset through the proxy, following the page's own (relative) links.
        link, ticket = mailed_link(hd)
        url = proxy.base + link[len("https://reset.example") :]
        client = Client()
        status, _h, body = client.request(url)
        assert status == 200 and 'id="password"' in body, body + proxy.error_log()
        english = urllib.parse.urljoin(url, re.search(r'href="([^"]+)" hreflang="en"', body)[1])
        assert english.startswith(proxy.base + "/aide/?")
        status, _h, body = client.request(english)
        assert status == 200 and '<html lang="en">' in body and "New password" in body
        action = re.search(r'<form method="post" action="([^"]*)"', body)[1]
        target = urllib.parse.urljoin(english, action)
        assert target.startswith(proxy.base + "/aide/")
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
        status, _h, body = client.request(target, {**fields, "password": NEW, "confirm": NEW})
        assert status == 200 and "Your password has been changed" in body, body
        assert slapd.bind("jdupont", NEW)
        assert [e.ticket_id for e in events(hd.url, "reset-redeemed")] == [ticket]

        # Through the proxy, each client is counted by the address nginx forwards.
        for i in range(30):
            assert from_address("127.0.0.2", proxy.base + f"/aide/?token=a{i}") == 410
        assert from_address("127.0.0.2", proxy.base + "/aide/?token=a-last") == 429
        assert from_address("127.0.0.3", proxy.base + "/aide/?token=b0") == 410  # another one
        # A limited client's own X-Forwarded-For is not believed: nginx adds the real one.
        spoof = {"X-Forwarded-For": "198.51.100.20"}
        assert from_address("127.0.0.2", proxy.base + "/aide/?token=a-spoof", spoof) == 429

        # Straight to the page (not from the proxy), the header is ignored: all 31 count
        # against the real address, not against 31 claimed ones.
        for i in range(30):
            claim = {"X-Forwarded-For": f"203.0.113.{i}"}
            assert from_address("127.0.0.4", page.base + f"/aide/?token=d{i}", claim) == 410
        assert from_address("127.0.0.4", page.base + "/aide/?token=d-last", claim) == 429
        assert from_address("127.0.0.3", proxy.base + "/aide/?token=b1") == 410  # untouched

    limited = [(e.data["limit"], e.data["client"]) for e in events(hd.url, "reset-page-limited")]
    assert limited == [("address", "127.0.0.2"), ("address", "127.0.0.4")]
    assert "198.51.100.20" not in all_events_text(hd.url) + page.output()
    assert "203.0.113." not in all_events_text(hd.url) + page.output()
    deadline = time.monotonic() + 10  # the log line is written after the answer
    while "127.0.0.3" not in page.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "127.0.0.2" in page.output() and "127.0.0.3" in page.output()
    assert "token=" not in page.output()


def test_bad_settings_are_said_plainly(hd, tmp_path):
    r = hd.run("reset-page", "--listen", "nowhere", json_out=False)
    assert r.code == 2 and "HOST:PORT" in r.err
    r = hd.run("reset-page", "--listen", "127.0.0.1:1", "--proxy", "not-an-address", json_out=False)
    assert r.code == 2 and "not-an-address" in r.err
    config = tmp_path / "helpdesk.toml"
    config.write_text('[reset_page]\nlisten = "127.0.0.1:8088"\nproxies = ["10.0.0.300"]\n')
    hd.env["HELPDESK_CONFIG"] = str(config)
    r = hd.run("reset-page", json_out=False)
    assert r.code == 2 and "helpdesk.toml:3" in r.err, r.err


def test_a_directory_that_does_not_answer_leaves_the_link_working(site, slapd, tmp_path):
    hd, start = site
    link, ticket = mailed_link(hd)
    secret = link[len(RESET_URL) :]
    # The same directory, at a port where nothing listens.
    down = tmp_path / "down.toml"
    down.write_text(
        slapd.connector_toml(policies='["wigii"]').replace(
            slapd.url, f"ldap://127.0.0.1:{free_port()}"
        )
    )
    hd.env["HELPDESK_CONFIG"] = str(down)
    page = start()
    client = Client()
    csrf = csrf_of(client.request(page.local(link))[2])
    form = {"csrf": csrf, "step": "set", "token": secret, "password": NEW, "confirm": NEW}
    status, _h, body = client.request(page.base + "/aide/", form)
    assert status == 503 and "reste valable" in body, body
    [failed] = events(hd.url, "reset-password-failed")
    assert failed.ticket_id == ticket and failed.data["status"] == "temporary"
    assert not events(hd.url, "reset-redeemed", "reset-password-set")
    assert slapd.bind("jdupont", OLD)

    # The directory is back: the same link sets the password.
    hd.env["HELPDESK_CONFIG"] = str(tmp_path / "helpdesk.toml")
    again = start()
    client = Client()
    csrf = csrf_of(client.request(again.local(link))[2])
    status, _h, body = client.request(again.base + "/aide/", {**form, "csrf": csrf})
    assert status == 200 and "Votre mot de passe a été changé" in body
    assert slapd.bind("jdupont", NEW)
    assert secret not in all_events_text(hd.url) and NEW not in all_events_text(hd.url)


def test_a_password_the_command_connector_refuses_asks_for_another(site, slapd, tmp_path):
    """Where a program sets the passwords (YunoHost's ``yunohost user update``), exit 65
    (EX_DATAERR) says "this password is refused": the page asks for another one and the
    link stays valid; a password the program accepts then works, once."""
    hd, start = site
    link, ticket = mailed_link(hd)
    secret = link[len(RESET_URL) :]
    log = tmp_path / "set.jsonl"
    program = tmp_path / "setpw"
    program.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        "a = json.load(sys.stdin)\n"
        "if len(a['password']) < 30:\n"
        "    print('password_too_simple_4'); sys.exit(65)\n"
        f"open({str(log)!r}, 'a').write(a['account'] + '\\n')\n"
        "print('changed')\n"
    )
    program.chmod(0o755)
    tool = tmp_path / "command.toml"
    tool.write_text(
        '[connectors.yunohost]\ntype = "command"\npolicies = ["wigii"]\n'
        f'program = ["{program}"]\nkinds = ["set-password"]\n'
    )
    hd.env["HELPDESK_CONFIG"] = str(tool)
    page = start()
    client = Client()
    csrf = csrf_of(client.request(page.local(link))[2])
    weak = "Seize-caracteres-et-un-peu"  # enough for the page (12), not for the program (30)
    form = {"csrf": csrf, "step": "set", "token": secret, "password": weak, "confirm": weak}
    status, _h, body = client.request(page.base + "/aide/", form)
    assert status == 400 and "a refusé ce mot de passe" in body, body
    assert 'role="alert"' in body and weak not in body
    [refused] = events(hd.url, "reset-password-failed")
    assert refused.ticket_id == ticket and refused.data["status"] == "refused"
    assert "password_too_simple_4" in refused.data["error"]
    assert not events(hd.url, "reset-redeemed", "reset-password-set") and not log.exists()

    strong = NEW + " et bien assez long"
    csrf = csrf_of(client.request(page.local(link))[2])
    form = {**form, "csrf": csrf, "password": strong, "confirm": strong}
    status, _h, body = client.request(page.base + "/aide/", form)
    assert status == 200 and "Votre mot de passe a été changé" in body, body
    assert log.read_text() == "jdupont\n"
    assert [e.ticket_id for e in events(hd.url, "reset-redeemed")] == [ticket]
    trail = all_events_text(hd.url)
    for leaked in (secret, weak, strong):
        assert leaked not in trail and leaked not in page.output()


def test_a_provider_without_a_password_connector_is_said_at_start(site, tmp_path):
    hd, start = site
    hd.env["HELPDESK_CONFIG"] = str(tmp_path / "none.toml")
    (tmp_path / "none.toml").write_text("")
    hd.ok("policy", "set", "indigos", "reset_url=https://reset.example/?t=")
    page = start()
    wait_for("the start-up advice", lambda: "le-pic" in page.output(), TIMEOUT, page.output)
    out = page.output()
    assert "wigii" in out and "aucun connecteur annuaire ou commande" in out
    assert "?token=" in out and "https://reset.example/?t=" in out  # indigos' reset_url


@needs_browser
@pytest.mark.slow
def test_a_form_of_another_page_cannot_post_in_the_browser(site, browser, slapd):
    """Even knowing the secret and the visitor's CSRF token, a page of another origin
    (here another port of the same host: same site, so the cookie is sent) cannot post."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hd, start = site
    page = start()
    link, _t = mailed_link(hd)
    secret = link[len(RESET_URL) :]
    browser.get(page.local(link))  # the visitor's browser now holds the page's cookie
    csrf = css(browser, "input[name=csrf]").get_attribute("value")
    fields = {"csrf": csrf, "step": "set", "token": secret, "password": NEW, "confirm": NEW}
    inputs = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    evil = (
        f'<!doctype html><form id="f" method="post" action="{page.base}/aide/">{inputs}</form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(evil)))
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        wait_for(
            "the forged post's answer",
            lambda: "n'est pas venu de cette page" in browser.page_source,
            TIMEOUT,
            page.output,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert "CSRF check failed (origin)" in page.output()
    assert slapd.bind("jdupont", OLD) and not slapd.bind("jdupont", NEW)
    assert not events(hd.url, "reset-password-set", "reset-redeemed")
