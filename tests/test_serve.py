"""``helpdesk serve``: the TUI in a real web browser, as on a projector.

The real command is started in a subprocess on a free port; Debian's headless Chromium,
driven by chromedriver through Selenium, opens the page, where textual-serve's xterm.js
draws the screen of a run of ``helpdesk tui`` that the server started for this browser.
The page draws on a canvas, so the text is read from xterm.js's own screen buffer (its
public ``buffer.active`` API): a script added before the page's own catches the terminal
object when textual-serve's page builds it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from tests.conftest import ROOT, _clean_env
from tests.test_ssh import Reader, _alive, descendants, free_port, kill_tree, wait_for

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 90.0  # generous: the machine is small and a browser is heavy

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromedriver (apt-get install chromium chromium-driver)",
)

# Runs in the page before its own scripts: textual-serve's page object sets its
# ``fitAddon`` right after creating its xterm.js Terminal; keep that terminal in sight.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "fitAddon", {value, writable: true, configurable: true, enumerable: true});
    if (this.terminal && this.terminal.buffer) window.__helpdeskTerminal = this.terminal;
  },
});
"""

# The lines on the terminal's screen, as xterm.js holds them (null before it exists).
SCREEN_TEXT = """
const t = window.__helpdeskTerminal;
if (!t) return null;
const b = t.buffer.active, lines = [];
for (let i = 0; i < t.rows; i++) {
  const line = b.getLine(b.viewportY + i);
  lines.push(line ? line.translateToString(true) : "");
}
return lines.join("\\n");
"""


class Served:
    """A running ``helpdesk serve`` and what it printed."""

    def __init__(self, args: list[str], env: dict, port: int, options: tuple[str, ...] = ()):
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "helpdesk", *args, "serve", "--port", str(port), *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        self.out, self.err = Reader(self.proc.stdout), Reader(self.proc.stderr)

    def output(self) -> str:
        return (self.out.data + self.err.data).decode("utf-8", "replace")

    def wait_listening(self) -> None:
        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"helpdesk serve ended with {self.proc.returncode}:\n{self.output()}")
            return connects("127.0.0.1", self.port)

        wait_for(f"helpdesk serve to listen on port {self.port}", up, TIMEOUT, self.output)

    def stop(self) -> None:
        kill_tree(self.proc)


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def serve(db_url, tmp_path):
    """Start ``helpdesk serve`` on the test's database (or ``db``)."""
    running = []

    def start(*args: str, options: tuple[str, ...] = (), db: str = db_url) -> Served:
        env = _clean_env()
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
        env["XDG_DATA_HOME"] = str(tmp_path / "data")
        served = Served(["--db", db, *args], env, free_port(), options)
        running.append(served)
        served.wait_listening()
        return served

    yield start
    for served in running:
        served.stop()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        # The page asks a web font from the Internet; this machine reaches only itself.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(
            executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
        ),
        options=options,
    )
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_TERMINAL})
        yield driver
    finally:
        driver.quit()


def screen(driver) -> str:
    return driver.execute_script(SCREEN_TEXT) or ""


def queue_titles(url: str, lang: str) -> dict[str, str]:
    """The queues' titles as the packs in this database give them."""
    from sqlmodel import select

    from helpdesk.storage import db
    from helpdesk.base.i18n import pick
    from helpdesk.storage.models import Workflow

    titles: dict[str, str] = {}
    with db.read_session(url) as s:
        for wf in s.exec(select(Workflow).order_by(Workflow.id)):
            titles.setdefault(wf.queue, pick(wf.title, lang))
    return titles


def open_page(browser, served: Served, what: str, probe) -> str:
    """Load the page and wait until the terminal in it shows ``probe``; returns the screen."""
    browser.get(f"http://127.0.0.1:{served.port}/")
    wait_for(
        what,
        lambda: probe(screen(browser)),
        TIMEOUT,
        lambda: f"screen:\n{screen(browser)}\nserver:\n{served.output()}",
    )
    return screen(browser)


@needs_browser
@pytest.mark.slow
def test_the_dashboard_shows_in_a_browser(serve, browser, db_url, tmp_path):
    served = serve("--as", "tom")
    titles = queue_titles(db_url, "fr")
    assert titles["password-reset"].startswith("Réinitialisation"), titles  # French, the default
    text = open_page(
        browser,
        served,
        "the dashboard's queues on the page",
        lambda t: titles["password-reset"] in t,
    )
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert "Tableau de bord" in text and "Files" in text, text
    for queue, title in titles.items():
        if queue != "general":  # the dashboard lists the four procedures
            assert title in text, text
    assert "tom (formateur)" in text, text  # the identity it was served with
    # Keys typed in the page reach the helpdesk: '3' opens the abuse queue.
    browser.find_element("css selector", ".xterm-helper-textarea").send_keys("3")
    wait_for(
        "the abuse queue after pressing 3",
        lambda: "Tableau de bord" not in screen(browser).splitlines()[0],
        TIMEOUT,
        lambda: screen(browser),
    )
    browser.save_screenshot(str(tmp_path / "abuse.png"))
    assert titles["abuse"] in screen(browser).splitlines()[0], screen(browser)

    # Ctrl+C ends the server and the helpdesk it started for this browser.
    runs = [
        pid
        for pid in descendants(served.proc.pid)
        if b"helpdesk" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert runs, "no run of the helpdesk under the server"
    served.proc.send_signal(signal.SIGINT)
    wait_for(
        "the server to stop after Ctrl+C",
        lambda: served.proc.poll() is not None,
        TIMEOUT,
        served.output,
    )
    assert served.proc.returncode == 0, served.output()
    wait_for(
        "the helpdesk runs to end with the server",
        lambda: not any(_alive(pid) for pid in runs),
        TIMEOUT,
        served.output,
    )
    assert "Traceback" not in served.output(), served.output()


@needs_browser
@pytest.mark.slow
def test_lang_and_identity_reach_the_page(serve, browser, db_url):
    served = serve("--lang", "en", "--as", "alice")
    titles = queue_titles(db_url, "en")
    text = open_page(
        browser, served, "the English dashboard", lambda t: titles["password-reset"] in t
    )
    assert "Dashboard" in text and "Queues" in text, text
    assert "alice (volunteer)" in text and "tom" not in text, text
    assert queue_titles(db_url, "fr")["password-reset"] not in text


@needs_browser
@pytest.mark.slow
def test_the_training_tui_in_a_browser_moves_its_clock(serve, browser, tmp_path):
    from helpdesk.training import sandbox

    url = f"sqlite:///{tmp_path / 'training.db'}"  # new: the first run seeds a scenario
    served = serve(options=("--training",), db=url)
    text = open_page(
        browser,
        served,
        "the training dashboard",
        lambda t: "FORMATION" in t and "tom (formateur)" in t,
    )
    assert "Tableau de bord" in text, text
    before = sandbox.clock_of(url)
    # F5 moves the training clock a day; the browser must hand it over, not reload the page.
    browser.find_element("css selector", ".xterm-helper-textarea").send_keys(Keys.F5)
    wait_for(
        "the training clock a day later",
        lambda: sandbox.clock_of(url) == before + timedelta(days=1),
        TIMEOUT,
        lambda: f"clock {sandbox.clock_of(url)}\n{screen(browser)}\n{served.output()}",
    )
    assert "FORMATION" in screen(browser)


def test_training_refuses_a_production_database_before_serving(db_url, cli_env):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpdesk",
            "--db",
            db_url,
            "serve",
            "--training",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "pas une base de formation" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_listens_on_loopback_only_by_default(serve):
    served = serve("--as", "tom")
    assert connects("127.0.0.1", served.port)
    # Bound to 127.0.0.1 itself, not to every address: another address of this machine
    # (127.0.0.2 is one, on Linux) finds nobody listening on that port.
    assert not connects("127.0.0.2", served.port)
    said = served.output()
    assert f"http://127.0.0.1:{served.port}/" in said, said
    assert "n'importe qui" not in said, said  # no warning about the network
    assert "pas une base de formation" in said, (
        said
    )  # but one about real data: not a training database


def test_pages_and_websockets_asked_under_another_name_are_refused(serve):
    served = serve("--as", "tom")
    base = f"http://127.0.0.1:{served.port}"

    def status(path: str, **headers) -> int:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(base + path, headers=headers), timeout=30
            ) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status("/") == 200
    assert status("/", Host=f"localhost:{served.port}") == 200
    # DNS rebinding: another site's name that resolves to 127.0.0.1.
    assert status("/", Host=f"attacker.example:{served.port}") == 403
    # A page of another site opening the websocket that drives the helpdesk.
    ws = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    assert status("/ws", Origin="http://attacker.example", **ws) == 403


def test_another_host_is_warned_about(db_url, tmp_path, cli_env):
    # Listening on every address for real would open the helpdesk to the network during
    # the test: hold the port so that the server cannot listen, after it has warned.
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "helpdesk",
                "--db",
                db_url,
                "--as",
                "tom",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            env=cli_env,
            cwd=ROOT,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    assert "0.0.0.0" in p.stderr and "tom" in p.stderr, p.stderr
    assert "n'importe qui" in p.stderr.lower(), p.stderr  # French by default
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert str(port) in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_database_that_is_not_ready_is_refused_before_serving(tmp_path, cli_env):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpdesk",
            "--db",
            str(tmp_path / "missing.db"),
            "serve",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "helpdesk init" in p.stderr, p.stderr
