"""Shared helpers for the ingestion tests: where the real-world samples live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]


def samples_dir() -> Path | None:
    """shared/samples beside the repository (as in CI), or $HELPDESK_SAMPLES."""
    for candidate in (os.environ.get("HELPDESK_SAMPLES"), _REPO.parent / "shared" / "samples"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def sample_files(*subdirs: str, pattern: str = "*") -> list[Path]:
    """Sample files under the given subdirectories (recursively); [] when samples are absent."""
    root = samples_dir()
    if root is None:
        return []
    files: list[Path] = []
    for sub in subdirs:
        files += sorted(p for p in (root / sub).rglob(pattern) if p.is_file())
    return files


def sample(relative: str) -> bytes:
    """Bytes of one sample file, or skip the test when the samples are not there."""
    root = samples_dir()
    if root is None or not (root / relative).is_file():
        pytest.skip(f"sample {relative} not available")
    return (root / relative).read_bytes()


def name_of(path: object) -> str:
    """Test id of a sample parameter."""
    return path.name if isinstance(path, Path) else "absent"


def params(paths: list[Path]) -> list[object]:
    """Parametrize values; a single skipped case when the samples directory is absent."""
    if paths:
        return paths
    return [pytest.param(None, marks=pytest.mark.skip(reason="shared/samples not available"))]


def assert_clear_reason(error: Exception) -> None:
    """A ParseError meant for a human: a reason, and not an escaped bug."""
    from helpdesk.base.i18n import _
    from helpdesk.ingest.errors import INTERNAL, ParseError

    assert isinstance(error, ParseError)
    assert error.reason.strip()
    assert not error.reason.startswith((INTERNAL, _(INTERNAL))), error.reason


def mangled(originals: list[bytes]):  # type: ignore[no-untyped-def]
    """Hypothesis strategy: one of ``originals`` (or random bytes) cut, spliced and corrupted."""
    from hypothesis import strategies as st

    noise = st.binary(max_size=64) | st.sampled_from(
        [
            b"\r",
            b"\n",
            b"\r\n\r\n",
            b"--",
            b"=?utf-8?B?",
            b"?=",
            b"\x00",
            b"\xff\xfe",
            b"\x1b]52;c;",
            b"boundary=",
            b"Content-Type: multipart/mixed; boundary=x\n",
            b"Content-Transfer-Encoding: base64\n",
            b"<",
            b">",
        ]
    )

    @st.composite
    def strategy(draw):  # type: ignore[no-untyped-def]
        base = draw(st.sampled_from(originals)) if originals else b""
        if not base or draw(st.integers(0, 9)) == 0:
            return draw(st.binary(max_size=2000))
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 6))):
            position = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["insert", "delete", "truncate", "replace"]))
            if op == "insert":
                data[position:position] = draw(noise)
            elif op == "delete":
                del data[position : position + draw(st.integers(1, 200))]
            elif op == "truncate":
                del data[position:]
            else:
                chunk = draw(noise)
                data[position : position + len(chunk)] = chunk
        return bytes(data)

    return strategy()


@pytest.fixture(scope="module")
def english():
    """The parsers' reasons in English, as these tests read them (French is the default:
    the CLI tests check it)."""
    from helpdesk.base import i18n

    i18n.set_lang("en")
    yield
    i18n.set_lang(None)
