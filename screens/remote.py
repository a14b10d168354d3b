"""The backend in a process of its own: the app's process never loads the database layer.

``helpdesk`` starts this process before it imports Textual, so SQLAlchemy, SQLModel and
the core load on one processor while Textual loads and paints on the other, and later
reads (counting a million tickets, a full-text search) never hold the interpreter lock
of the process that draws the screen and answers keys.

``RemoteBackend`` has ``helpdesk.tui_api.backend.Backend``'s methods. Each call goes over a pipe
as a pickled frame and comes back as plain data (``helpdesk.tui_api.views``) or as the error it
raised: ``helpdesk.base.errors`` cross as they are, with their rule and citation; any other
error crosses as a ``BackendError`` named after it (``OperationalError: …``) with the
backend's traceback. Calls from several threads are answered concurrently by a pool of
threads in the backend process, each matched to its caller by an id.

The two processes trust each other (one user, one program: pickle is fine between them).
The backend process ends when the app closes the pipe, or dies (it reads end of file);
if it dies first, the waiting calls fail with ``BackendGone`` and its last words, and the
next call starts a new one. Its clock (a training database lives at its own) is copied
into the app's with every answer, so both show the same "now".

This module imports neither Textual nor the database layer.
"""

from __future__ import annotations

import collections
import gc
import itertools
import os
import pickle
import struct
import subprocess
import sys
import threading
import traceback
from typing import Any

from helpdesk.base import clock
from helpdesk.cli import entry
from helpdesk.base.errors import BadInput, HelpdeskError, Refused
from helpdesk.base.i18n import _, current_lang, set_lang
from screens import GC_YOUNG

#: The ``Backend`` methods the app may call.
CALLS = frozenset(
    {
        "load_info",
        "follow_clock",
        "dashboard",
        "count",
        "page",
        "find",
        "ticket_at_once",
        "ticket",
        "preview",
        "apply",
        "claim",
        "release",
        "assign",
        "walkthrough",
        "training_feedback",
        "move_clock",
        "scenarios",
        "start_scenario",
        "play_as",
        "changes",
        "stop_watching",
        "saved_replies",
        "ask_items",
        "draft",
        "converse",
        "set_account",
        "merge",
    }
)
WORKERS = 8  # threads answering calls in the backend process
_FRAME = struct.Struct("!I")


class BackendGone(HelpdeskError):
    """The backend process stopped before it answered."""


class BackendError(Exception):
    """An unexpected error raised in the backend process. Its class is named after the
    original's (``type(exc).__name__`` reads ``OperationalError``, not ``BackendError``);
    ``remote_traceback`` holds where it was raised."""

    remote_traceback = ""


_error_classes: dict[str, type[BackendError]] = {}


def _error_class(name: str) -> type[BackendError]:
    cls = _error_classes.get(name)
    if cls is None:
        cls = _error_classes[name] = type(name, (BackendError,), {"__module__": __name__})
    return cls


def _rebuild_error(name: str, message: str, tb: str) -> BackendError:
    exc = _error_class(name)(message)
    exc.remote_traceback = tb
    return exc


def _portable(exc: BaseException) -> BaseException:
    """The error as the app's process can unpickle it without the core: ``helpdesk.base.errors``
    classes as they are (a subclass defined elsewhere becomes its base there); anything
    else a ``BackendError`` carrying its name, message and traceback."""
    if isinstance(exc, HelpdeskError):
        if type(exc).__module__ == HelpdeskError.__module__:
            return exc
        base = next(c for c in type(exc).__mro__ if c.__module__ == HelpdeskError.__module__)
        if issubclass(base, Refused):
            return Refused(exc.rule, exc.reason, exc.citation, exc.citation_text)  # type: ignore[attr-defined]
        return base(str(exc))
    tb = "".join(traceback.format_exception(exc))
    return _RemoteErrorReduce(type(exc).__name__, str(exc), tb)


class _RemoteErrorReduce(Exception):
    """Pickles as a ``BackendError`` built in the receiving process."""

    def __init__(self, name: str, message: str, tb: str):
        super().__init__(message)
        self.name, self.message, self.tb = name, message, tb

    def __reduce__(self):
        return _rebuild_error, (self.name, self.message, self.tb)


# --- frames ---------------------------------------------------------------------------------


def _write(stream, lock: threading.Lock, obj: Any) -> None:
    _write_bytes(stream, lock, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _write_bytes(stream, lock: threading.Lock, data: bytes) -> None:
    with lock:
        stream.write(_FRAME.pack(len(data)) + data)
        stream.flush()


def _read(stream) -> Any:
    """The next frame, or None at end of file."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


# --- the app's side -------------------------------------------------------------------------


class _Call:
    __slots__ = ("done", "ok", "value", "proc")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None
        self.proc: subprocess.Popen | None = None  # the process asked


class RemoteBackend:
    """``Backend``'s methods, answered by a backend process started at construction."""

    def __init__(self, url: str | None, login: str | None, *, python: str | None = None):
        self.url = url or ""  # the resolved URL once ``load_info`` answered (``info.url``)
        self.login = login or None
        self.info = None  # helpdesk.tui_api.views.Info, once load_info answered
        self.trainer: str | None = None  # a trainer playing a volunteer (``play_as``)
        self.python = python or sys.executable
        self._lock = threading.Lock()  # the process, the pending calls
        self._send = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Call] = {}
        self._proc: subprocess.Popen | None = None
        self._last_words: collections.deque[str] = collections.deque(maxlen=40)
        self._closed = False
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # --- the process ----------------------------------------------------------------------

    def _start(self) -> None:
        """Start the backend process (under ``self._lock``), or take the one ``prespawn``
        started. Its first frame tells it the database, the volunteer, the clock and the
        language of this process."""
        proc = entry.take(self.python) or entry.spawn(self.python)
        self._proc = proc
        self._last_words.clear()
        init = {
            "url": self.url or None,
            "login": self.login,
            "now": clock.fixed_at(),
            "lang": current_lang(),
            "load_info": self.info is not None,  # a restart: learn again what it knew
        }
        words = threading.Thread(
            target=self._stderr, args=(proc,), name="backend-stderr", daemon=True
        )
        words.start()
        threading.Thread(
            target=self._answers, args=(proc, words), name="backend-answers", daemon=True
        ).start()
        try:
            _write(proc.stdin, self._send, init)
        except OSError:  # it died at once: the answers thread says why
            pass

    def _answers(self, proc: subprocess.Popen, words: threading.Thread) -> None:
        try:
            while True:
                frame = _read(proc.stdout)
                if frame is None:
                    break
                call_id, ok, value, now = frame
                if now != clock.fixed_at():
                    clock.set_now(now)  # the backend lives at the training clock: so does the app
                with self._lock:
                    call = self._pending.pop(call_id, None)
                if call is not None:
                    call.ok, call.value = ok, value
                    call.done.set()
        except Exception as exc:  # noqa: BLE001 - a broken frame: the process is unusable
            self._last_words.append(f"{type(exc).__name__}: {exc}")
        proc.wait()
        words.join(timeout=2)  # its last words, before saying why it stopped
        self._gone(proc)

    def _stderr(self, proc: subprocess.Popen) -> None:
        for raw in proc.stderr:
            self._last_words.append(raw.decode("utf-8", "replace").rstrip())

    def _gone(self, proc: subprocess.Popen) -> None:
        """The process ended (died, or closed): every call still waiting on it fails,
        saying why."""
        with self._lock:
            if self._proc is proc:
                self._proc = None
            lost = [i for i, call in self._pending.items() if call.proc is proc]
            calls = [self._pending.pop(i) for i in lost]
        why = self._why(proc)
        for call in calls:
            call.ok, call.value = False, BackendGone(why)
            call.done.set()

    def _why(self, proc: subprocess.Popen) -> str:
        words = [w for w in self._last_words if w.strip()]
        last = words[-1] if words else _("exit status {code}").format(code=proc.returncode)
        return _("the database process stopped ({why})").format(why=last)

    def close(self) -> None:
        """End the backend process: it finishes the calls it holds, then exits."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # --- calls ----------------------------------------------------------------------------

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        call, call_id = _Call(), next(self._ids)
        data = pickle.dumps((call_id, name, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._closed:
                raise BackendGone(_("the database process was closed"))
            if self._proc is None:
                self._start()  # it died: a new one, which learns again what the app knows
            proc = call.proc = self._proc
            self._pending[call_id] = call
        try:
            _write_bytes(proc.stdin, self._send, data)
        except (OSError, ValueError):  # a broken pipe: the answers thread says why
            pass
        call.done.wait()
        if call.ok:
            return call.value
        raise call.value

    def load_info(self):
        self.info = self._call("load_info")
        self.url = self.info.url
        return self.info

    def follow_clock(self) -> None:
        self._call("follow_clock")

    def dashboard(self, limit: int = 8):
        return self._call("dashboard", limit)

    def count(self, flt, share: Any = None) -> int:
        return self._call("count", flt, share)

    def page(self, flt, order: str, offset: int, limit: int, share: Any = None):
        return self._call("page", flt, order, offset, limit, share)

    def find(self, text: str, limit: int = 10):
        return self._call("find", text, limit)

    def ticket_at_once(self, ticket_id: int):
        return self._call("ticket_at_once", ticket_id)

    def ticket(self, ticket_id: int, history: int | None = None) -> dict:
        return self._call("ticket", ticket_id, *(() if history is None else (history,)))

    def preview(
        self,
        ticket_id: int,
        action: str,
        inputs: dict | None,
        version: int | None,
        lang: str | None = None,
    ):
        return self._call("preview", ticket_id, action, inputs, version, lang)

    def saved_replies(self, lang: str = "fr") -> list[str]:
        return self._call("saved_replies", lang)

    def ask_items(self, ticket_id: int) -> dict[str, str]:
        return self._call("ask_items", ticket_id)

    def draft(self, ticket_id: int, request: dict) -> dict:
        return self._call("draft", ticket_id, request)

    def converse(self, ticket_id: int, request: dict, version: int | None) -> None:
        return self._call("converse", ticket_id, request, version)

    def set_account(self, ticket_id: int, login: str | None, version: int | None) -> None:
        return self._call("set_account", ticket_id, login, version)

    def merge(self, src: int, into: int) -> None:
        return self._call("merge", src, into)

    def apply(
        self,
        ticket_id: int,
        action: str,
        inputs: dict | None,
        version: int | None,
        lang: str | None = None,
    ):
        return self._call("apply", ticket_id, action, inputs, version, lang)

    def claim(self, ticket_id: int):
        return self._call("claim", ticket_id)

    def release(self, ticket_id: int) -> None:
        self._call("release", ticket_id)

    def assign(self, ticket_id: int, login: str | None, version: int | None) -> None:
        self._call("assign", ticket_id, login, version)

    def walkthrough(self, ticket_id: int):
        return self._call("walkthrough", ticket_id)

    def training_feedback(self, ticket_id: int, action: str, refused: Refused | None = None):
        return self._call("training_feedback", ticket_id, action, refused)

    def move_clock(self, step: str):
        return self._call("move_clock", step)

    def scenarios(self) -> list[dict]:
        return self._call("scenarios")

    def start_scenario(self, key: str | None = None):
        started = self._call("start_scenario", key)
        self.load_info()  # the database was replaced: what it holds, again
        return started

    def play_as(self, login: str | None):
        before = self.info.actor.login if self.info and self.info.actor else None
        self.info = self._call("play_as", login)
        self.trainer = self.trainer or before  # who plays, for the screens
        self.login = self.info.actor.login if self.info.actor else self.login
        return self.info

    def changes(self) -> Any:
        return self._call("changes")

    def stop_watching(self) -> None:
        self._call("stop_watching")


# --- the backend's side ---------------------------------------------------------------------


def main() -> None:
    """The backend process: reads calls on standard input, answers on standard output.

    Both are moved aside first, so that nothing the core prints can break a frame (it goes
    to standard error, which the app keeps as the process's last words)."""
    calls_in = os.fdopen(os.dup(0), "rb")
    answers_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(calls_in, answers_out)


def serve(calls_in, answers_out) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # The database layer loads first: the app may still be reading its command line
    # (``prespawn``), and it says which database and volunteer only then.
    from helpdesk.tui_api.backend import Backend

    init = _read(calls_in)
    if init is None:
        return
    clock.set_now(init["now"])
    set_lang(init["lang"])
    backend = Backend(init["url"], init["login"])
    if init.get("load_info"):
        try:
            backend.load_info()
        except Exception:  # noqa: BLE001 - the app's next load_info says why
            pass
    # The collector was off while the database layer loaded (a tenth of the time went to
    # collections finding nothing: it is all alive). What is loaded lives as long as the
    # process: frozen, out of the collector's sight (as in the app: HelpdeskApp._tune_collector).
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    gc.enable()
    send = threading.Lock()

    def answer(call_id: int, name: str, args: tuple, kwargs: dict) -> None:
        try:
            if name not in CALLS:
                raise BadInput(f"no backend call {name!r}")
            ok, value = True, getattr(backend, name)(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every error goes back to the caller
            ok, value = False, _portable(exc)
        try:
            data = pickle.dumps(
                (call_id, ok, value, clock.fixed_at()), protocol=pickle.HIGHEST_PROTOCOL
            )
        except Exception as exc:  # noqa: BLE001 - an answer that cannot cross says so
            data = pickle.dumps(
                (call_id, False, _portable(exc), clock.fixed_at()), protocol=pickle.HIGHEST_PROTOCOL
            )
        try:
            _write_bytes(answers_out, send, data)
        except (OSError, ValueError):  # the app is gone
            pass

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="backend") as pool:
        while (frame := _read(calls_in)) is not None:
            pool.submit(answer, *frame)
    backend.close()
