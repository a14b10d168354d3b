"""``helpdesk reset-page --listen HOST:PORT``: the page a reset link opens.

A small HTTP server (the standard library's threading server: no framework, one process)
meant to sit behind a TLS reverse proxy. The provider's ``reset_url`` is the proxy's public
https address of the page followed by ``?token=``; a mailed link is that address with the
one-time secret appended, so opening it shows the form. Without a ``token`` the page asks
for a login and a one-time code read out on the phone (CommunesPlone art. 6.7).

What it guards against, and how:

- **guessing**: attempts are counted per client address (an IPv6 client by its /64), per
  secret (by its hash) and per login in memory, in sliding windows
  (:mod:`helpdesk.base.ratelimit`); past a limit the answer is 429 with ``Retry-After``;
  the first refusal of each key in a window is audited (``reset-page-limited``);
- **forged posts (CSRF)**: each form carries a token bound by HMAC to a random cookie
  (``SameSite=Strict``, ``HttpOnly``, ``Secure`` and ``__Host-`` behind https); a post
  without both, or whose ``Origin`` (or ``Sec-Fetch-Site``) says another site, is refused
  (403);
- **forwarded headers**: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read only when
  the connection comes from a configured proxy address (``--proxy``, or ``proxies`` under
  ``[reset_page]`` in helpdesk.toml); from anyone else they are ignored;
- **leaks**: the request log holds the method, the path (never the query) and the status;
  no secret and no password is logged, audited or echoed back; answers carry
  ``Referrer-Policy: same-origin`` (no other site sees the link; our own posts keep their ``Origin``), ``Cache-Control: no-store``, a strict CSP and
  ``frame-ancestors 'none'``.

Its settings in ``helpdesk.toml``::

    [reset_page]
    listen = "127.0.0.1:8088"
    proxies = ["127.0.0.1"]            # addresses or networks whose X-Forwarded-* are believed
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from helpdesk.base import clock
from helpdesk.base.i18n import tr
from helpdesk.base.ratelimit import Limiter, client_key
from helpdesk.cli import reset_page_html as html

MAX_BODY = 8192
MAX_PASSWORD = 256
MAX_THREADS = 32
WINDOW = 15 * 60.0
PER_ADDRESS = 30  # requests carrying a secret, from one address, per window
PER_SECRET = 10  # tries of one secret (or one login's codes) per window
LANGS = ("fr", "en")


# --- the server -------------------------------------------------------------------------------


class ResetPage:
    """What every request shares: the database, the configuration, the limits, the key."""

    def __init__(self, url: str, config, proxies: list, *, clock_=time.monotonic):
        self.url = url
        self.config = config
        self.proxies = proxies
        self.key = secrets.token_bytes(32)  # CSRF tokens die with the process
        self.by_address = Limiter(PER_ADDRESS, WINDOW, clock=clock_)
        self.by_secret = Limiter(PER_SECRET, WINDOW, clock=clock_)
        self.by_login = Limiter(PER_SECRET, WINDOW, clock=clock_)
        self._noted: dict[tuple[str, str], float] = {}
        self._noted_lock = threading.Lock()
        self.clock = clock_

    def from_proxy(self, peer: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    def csrf(self, cookie: str) -> str:
        return hmac.new(self.key, cookie.encode(), hashlib.sha256).hexdigest()

    def note_limited(self, kind: str, key: str, client: str) -> None:
        """Audit the first refusal of a key in a window, not every one."""
        now = self.clock()
        with self._noted_lock:
            if now - self._noted.get((kind, key), -WINDOW) < WINDOW:
                return
            self._noted[(kind, key)] = now
            if len(self._noted) > 10_000:
                self._noted = {k: t for k, t in self._noted.items() if now - t < WINDOW}
        from helpdesk.service import password_reset

        password_reset.note_limited(self.url, kind, client)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, handler, page: ResetPage):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.page = page
        self.slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):  # too many at once: say so, at once
            try:
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class Handler(BaseHTTPRequestHandler):
    server_version = "helpdesk-reset-page"
    sys_version = ""
    timeout = 20  # a client that sends nothing for this long is dropped

    # --- plumbing ------------------------------------------------------------------------

    def version_string(self) -> str:  # no Python version for the curious
        return self.server_version

    server: Server

    @property
    def page(self) -> ResetPage:
        return self.server.page

    def log_request(self, code="-", size="-"):  # the path, never the query (it holds secrets)
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        sys.stderr.write(
            f"{self.log_date_time_string()} {self.client()} {self.command} {path[:200]} {int(code) if str(code).isdigit() else code}\n"
        )

    def log_message(self, format, *args):  # errors of the server itself: no request line
        if format.startswith('"%s" %s %s'):
            return
        sys.stderr.write(
            f"{self.log_date_time_string()} {self.client()} {format % args}"[:300] + "\n"
        )

    def client(self) -> str:
        """The client's address: the peer, or, from a configured proxy, the last address of
        X-Forwarded-For that is not a proxy of ours."""
        peer = self.client_address[0]
        if not self.page.from_proxy(peer):
            return peer
        chain = [
            a.strip() for a in ",".join(self.headers.get_all("X-Forwarded-For") or []).split(",")
        ]
        for hop in reversed([a for a in chain if a]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # garbage from the proxy's side: count the proxy itself
            if not self.page.from_proxy(hop):
                return hop
        return peer

    def scheme(self) -> str:
        if self.page.from_proxy(self.client_address[0]):
            proto = (self.headers.get("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                return proto
        return "http"

    def lang(self, form: dict | None = None) -> str:
        asked = (form or {}).get("lang") or self.query().get("lang", "")
        if asked in LANGS:
            return asked
        best, best_q = "fr", -1.0
        for part in (self.headers.get("Accept-Language") or "")[:500].split(","):
            tag, _sep, params = part.strip().partition(";")
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            base = tag.strip().lower().split("-")[0]
            if base in LANGS and q > best_q:
                best, best_q = base, q
        return best

    def query(self) -> dict[str, str]:
        raw = urlsplit(self.path).query
        try:
            parsed = parse_qs(raw, max_num_fields=10)
        except ValueError:
            return {}
        return {k: v[0] for k, v in parsed.items()}

    def cookie_name(self) -> str:
        return "__Host-helpdesk-csrf" if self.scheme() == "https" else "helpdesk-csrf"

    def cookie(self) -> str:
        from http.cookies import CookieError, SimpleCookie

        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except CookieError:
            return ""
        morsel = jar.get(self.cookie_name())
        value = morsel.value if morsel else ""
        return (
            value
            if 20 <= len(value) <= 100 and value.replace("-", "").replace("_", "").isalnum()
            else ""
        )

    def send_page(self, status: int, body: str, *, nonce: str, cookie: str = "", retry: float = 0):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
        )
        if self.scheme() == "https":
            self.send_header("Strict-Transport-Security", "max-age=31536000")
        if retry:
            self.send_header("Retry-After", str(int(retry + 0.999)))
        if cookie:
            secure = "; Secure" if self.scheme() == "https" else ""
            self.send_header(
                "Set-Cookie",
                f"{self.cookie_name()}={cookie}; Path=/; HttpOnly; SameSite=Strict{secure}",
            )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def render(
        self,
        status: int,
        lang: str,
        title: str,
        body: str,
        *,
        error: str = "",
        query=None,
        cookie="",
    ):
        nonce = secrets.token_urlsafe(16)
        self.send_page(
            status,
            html.page(lang, title, body, nonce=nonce, error=error, other_query=query),
            nonce=nonce,
            cookie=cookie,
        )

    def fresh_cookie(self) -> tuple[str, str]:
        """(cookie to set or "", the CSRF token for the form)."""
        current = self.cookie()
        if current:
            return "", self.page.csrf(current)
        new = secrets.token_urlsafe(32)
        return new, self.page.csrf(new)

    # --- limits ---------------------------------------------------------------------------

    def limited(self, lang: str, *, secret: str = "", login: str = "") -> bool:
        """Count this attempt; when a limit is reached, answer 429 and say so (True)."""
        from helpdesk.rules.tokens import hash_secret

        client = self.client()
        checks = [("address", self.page.by_address, client_key(client))]
        if secret:
            checks.append(("secret", self.page.by_secret, hash_secret(secret)))
        if login:
            checks.append(("login", self.page.by_login, login.strip().casefold()[:200]))
        for kind, limiter, key in checks:
            wait = limiter.hit(key)
            if wait:
                self.page.note_limited(kind, key, client)
                nonce = secrets.token_urlsafe(16)
                minutes = max(1, int(wait // 60 + 1))
                self.send_page(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    html.page(
                        lang,
                        tr("Too many attempts", lang),
                        html.message(
                            tr("Too many attempts. Try again in {n} minutes.", lang).format(
                                n=minutes
                            )
                        ),
                        nonce=nonce,
                        error=tr("Too many attempts. Try again in {n} minutes.", lang).format(
                            n=minutes
                        ),
                    ),
                    nonce=nonce,
                    retry=wait,
                )
                return True
        return False

    # --- GET --------------------------------------------------------------------------------

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        try:
            self._get()
        except Exception as exc:  # noqa: BLE001 - a page, never a traceback to the browser
            self.fail(exc)

    def _get(self):
        if urlsplit(self.path).path.rsplit("/", 1)[-1] in ("favicon.ico", "robots.txt"):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        q = self.query()
        lang = self.lang()
        set_cookie, csrf = self.fresh_cookie()
        token = q.get("token", "").strip()
        if not token:
            self.render(
                200,
                lang,
                tr("Reset your password", lang),
                html.code_form(lang, keep={"csrf": csrf}),
                cookie=set_cookie,
            )
            return
        if self.limited(lang, secret=token):
            return
        from helpdesk.service import password_reset

        looked = password_reset.look(self.page.url, token, clock.now(), channel="email")
        if not looked.valid:
            self.refused(lang, cookie=set_cookie)
            return
        self.render(
            200,
            lang,
            tr("Choose a new password", lang),
            html.password_form(
                lang,
                login=looked.login,
                provider=looked.provider,
                min_length=looked.min_length,
                keep={"csrf": csrf, "token": token},
            ),
            query={"token": token},
            cookie=set_cookie,
        )

    def refused(self, lang: str, *, cookie: str = "", status: int = 410):
        text = tr(
            "This link or code is not valid: it was already used, has expired, or was mistyped. Ask your provider for a new one.",
            lang,
        )
        self.render(
            status,
            lang,
            tr("Reset your password", lang),
            html.message(tr("Nothing was changed.", lang)),
            error=text,
            cookie=cookie,
        )

    # --- POST -------------------------------------------------------------------------------

    def do_POST(self):
        try:
            self._post()
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)

    def read_form(self) -> dict[str, str] | None:
        try:
            length = int(self.headers.get("Content-Length") or "-1")
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return None
        raw = self.rfile.read(length)
        try:
            parsed = parse_qs(
                raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20
            )
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in parsed.items()}

    def same_site(self) -> bool:
        """The post comes from our own page: the browser says so where it can."""
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = self.headers.get("Origin")
        if origin is not None:
            host = self.headers.get("Host") or ""
            if origin.lower() != f"{self.scheme()}://{host}".lower():
                return False
        return True

    def _post(self):
        form = self.read_form()
        lang = self.lang(form)
        if form is None:
            self.render(
                400,
                lang,
                tr("Reset your password", lang),
                html.message(tr("Nothing was changed.", lang)),
                error=tr("The form could not be read. Open the link again.", lang),
            )
            return
        cookie = self.cookie()
        why = (
            "no cookie"
            if not cookie
            else "token"
            if not hmac.compare_digest(form.get("csrf", ""), self.page.csrf(cookie))
            else "origin"
            if not self.same_site()
            else ""
        )
        if why:
            sys.stderr.write(
                f"{self.log_date_time_string()} {self.client()} CSRF check failed ({why})\n"
            )
            self.render(
                403,
                lang,
                tr("Reset your password", lang),
                html.message(tr("Nothing was changed.", lang)),
                error=tr(
                    "This form has expired or did not come from this page. Open the link again.",
                    lang,
                ),
            )
            return
        csrf = form["csrf"]
        step = form.get("step", "")
        token = form.get("token", "").strip()
        login, code = form.get("login", "").strip(), form.get("code", "").strip()
        channel = "email" if token else "phone"
        secret = token or code
        if step not in ("code", "set") or (not secret and not login):
            self.refused(lang, status=400)
            return
        if self.limited(lang, secret=secret, login="" if token else login):
            return
        from helpdesk.service import password_reset

        keep = {"csrf": csrf, **({"token": token} if token else {"login": login, "code": code})}
        if step == "code":
            if not login or not code:
                self.render(
                    400,
                    lang,
                    tr("Reset your password", lang),
                    html.code_form(
                        lang,
                        keep={"csrf": csrf},
                        login=login,
                        invalid="login" if not login else "code",
                    ),
                    error=tr("Give your login and the code.", lang),
                )
                return
            looked = password_reset.look(
                self.page.url, code, clock.now(), channel="phone", login=login
            )
            if not looked.valid:
                self.render(
                    400,
                    lang,
                    tr("Reset your password", lang),
                    html.code_form(lang, keep={"csrf": csrf}, login=login, invalid="code"),
                    error=tr(
                        "This login and code do not match a valid code: it was already used, has expired, or was mistyped.",
                        lang,
                    ),
                )
                return
            self.password_page(lang, looked, keep)
            return
        # step == "set"
        password, confirm = form.get("password", ""), form.get("confirm", "")
        looked = password_reset.look(
            self.page.url, secret, clock.now(), channel=channel, login=login or None
        )
        if not looked.valid:
            self.refused(lang)
            return
        problem, invalid = "", ""
        if len(password) < looked.min_length:
            problem, invalid = (
                tr("The password must have at least {n} characters.", lang).format(
                    n=looked.min_length
                ),
                "password",
            )
        elif len(password) > MAX_PASSWORD:
            problem, invalid = (
                tr("The password must have at most {n} characters.", lang).format(n=MAX_PASSWORD),
                "password",
            )
        elif any(ord(c) < 32 or ord(c) == 127 for c in password):
            problem, invalid = tr("The password may not hold control characters.", lang), "password"
        elif password != confirm:
            problem, invalid = tr("The two passwords differ. Type them again.", lang), "confirm"
        if problem:
            self.password_page(lang, looked, keep, error=problem, invalid=invalid, status=400)
            return
        changed = password_reset.change_password(
            self.page.url,
            secret,
            password,
            clock.now(),
            config=self.page.config,
            channel=channel,
            login=login or None,
        )
        if changed.outcome == "done":
            self.render(
                200,
                lang,
                tr("Password changed", lang),
                html.message(
                    tr(
                        "Your password has been changed. You can now log in with it. This link or code no longer works.",
                        lang,
                    ),
                    ok=True,
                ),
            )
        elif changed.outcome == "refused":
            self.refused(lang)
        elif changed.outcome == "short":
            looked.min_length = changed.min_length
            self.password_page(
                lang,
                looked,
                keep,
                error=tr("The password must have at least {n} characters.", lang).format(
                    n=changed.min_length
                ),
                invalid="password",
                status=400,
            )
        elif changed.outcome == "weak":
            self.password_page(
                lang,
                looked,
                keep,
                error=tr(
                    "The service that holds your account refused this password: too short or too simple for its rules, or used before. Choose another one.",
                    lang,
                ),
                invalid="password",
                status=400,
            )
        else:
            self.password_page(
                lang,
                looked,
                keep,
                error=tr(
                    "The password could not be changed now: the service did not answer. Your link or code still works; try again later.",
                    lang,
                ),
                status=503,
            )

    def password_page(self, lang, looked, keep, *, error="", invalid="", status=200):
        self.render(
            status,
            lang,
            tr("Choose a new password", lang),
            html.password_form(
                lang,
                login=looked.login,
                provider=looked.provider,
                min_length=looked.min_length,
                keep=keep,
                invalid=invalid,
            ),
            error=error,
            query={"token": keep["token"]} if "token" in keep else None,
        )

    def fail(self, exc: Exception) -> None:
        """Something broke (the database is away...): say so, log the kind, keep the secret."""
        sys.stderr.write(
            f"{self.log_date_time_string()} {self.client()} error: {type(exc).__name__}\n"
        )
        lang = "fr"
        try:
            self.render(
                503,
                lang,
                tr("Reset your password", lang),
                html.message(tr("Nothing was changed.", lang)),
                error=tr("The page cannot work right now. Try again later.", lang),
            )
        except OSError:
            pass
