"""``helpdesk serve`` as an attacker's page would reach it (issue 13): every route behind
the Host/Origin check, the Origin compared with its scheme, and a cap on sessions."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from tests.test_serve import serve  # noqa: F401 - the fixture that starts the real command

pytest.importorskip("textual_serve")


def status(base: str, path: str, **headers) -> int:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(base + path, headers=headers), timeout=30
        ) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_static_and_download_are_behind_the_same_check(serve):  # noqa: F811
    served = serve("--as", "tom")
    base = f"http://127.0.0.1:{served.port}"
    foreign = {"Host": f"attacker.example:{served.port}"}
    # Found: /static/ and /download/ answered under any name.
    assert status(base, "/static/", **foreign) == 403
    assert status(base, "/download/anything", **foreign) == 403
    assert status(base, "/static/", Origin="http://attacker.example") == 403
    assert status(base, "/static/") == 200


def test_the_origin_is_checked_with_its_scheme(serve):  # noqa: F811
    served = serve("--as", "tom")
    base = f"http://127.0.0.1:{served.port}"
    # Found: an https:// page of the same host and port passed as the same origin.
    assert status(base, "/", Origin=f"https://127.0.0.1:{served.port}") == 403
    assert status(base, "/", Origin=f"http://127.0.0.1:{served.port}") == 200


def test_concurrent_sessions_are_capped(serve):  # noqa: F811
    import aiohttp

    served = serve("--as", "tom", options=("--sessions", "1"))
    url = f"ws://127.0.0.1:{served.port}/ws"

    async def two():
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(url)
            try:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(url)
                return refused.value.status
            finally:
                await first.close()

    assert asyncio.run(two()) == 503
