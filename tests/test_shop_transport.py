from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from plt.shop.options import ShopConfig
from plt.shop.transport import Transport, negotiate


def test_negotiate_picks_the_shops_preference_among_what_is_accepted() -> None:
    preferred = ["br", "zstd", "gzip", "deflate"]
    assert negotiate("gzip, deflate, br, zstd", preferred) == "br"
    assert negotiate("gzip, deflate", preferred) == "gzip"
    assert negotiate("gzip;q=0, deflate", preferred) == "deflate"
    assert negotiate("", preferred) == "identity"
    assert negotiate("*", ["zstd"]) == "zstd"
    assert negotiate("gzip;q=0, *", ["gzip", "deflate"]) == "deflate"
    assert negotiate("br", ["gzip"]) == "identity"
    assert negotiate("gzip;q=x, deflate", preferred) == "deflate"  # a bad weight: ignored


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays asked of asyncio.sleep, without waiting."""
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return delays


class Connection:
    """A transport: weakly referenced, one per HTTP connection."""


def waits(transport: Transport, connections: list[Any]) -> None:
    async def run() -> None:
        for connection in connections:
            await transport.wait(SimpleNamespace(transport=connection))

    asyncio.run(run())


@pytest.mark.parametrize(("tls", "first"), [(False, 0.1), (True, 0.15)])
def test_a_connections_first_response_pays_for_its_handshakes(
    sleeps: list[float], tls: bool, first: float
) -> None:
    transport = Transport(ShopConfig(latency_ms=50, tls=tls), {})
    one, two = Connection(), Connection()
    waits(transport, [one, one, two, one])
    assert sleeps == pytest.approx([first, 0.05, first, 0.05])


def test_no_latency_no_wait(sleeps: list[float]) -> None:
    waits(Transport(ShopConfig(), {}), [Connection(), None])
    assert sleeps == []


def mocked_writer() -> mock.Mock:
    writer = mock.Mock()
    for name in ("write", "write_headers", "write_eof", "drain"):
        setattr(writer, name, mock.AsyncMock())
    return writer


def written(writer: mock.Mock) -> list[bytes]:
    return [bytes(call.args[0]) for call in writer.write.call_args_list]


def send(transport: Transport, writer: mock.Mock, parts: tuple[bytes, ...], content_type: str):
    request = make_mocked_request("GET", "/product/x-1", writer=writer)
    return asyncio.run(transport.send(request, parts, content_type, {"Vary": "Accept-Encoding"}))


def test_send_writes_the_parts_in_order() -> None:
    writer = mocked_writer()
    response = send(Transport(ShopConfig(), {}), writer, (b"<html>", b"bulk"), "text/html")
    assert written(writer) == [b"<html>", b"bulk"]
    assert (response.content_length, response.charset) == (10, "utf-8")
    assert response.headers["Vary"] == "Accept-Encoding"


def test_a_client_gone_mid_body_is_counted_not_raised() -> None:
    writer, counters = mocked_writer(), {"aborted": 0}
    writer.write.side_effect = ConnectionResetError()
    send(Transport(ShopConfig(), counters), writer, (b"{}",), "application/json")
    assert counters == {"aborted": 1}


def test_a_paced_body_goes_in_slices_at_the_rate(sleeps: list[float]) -> None:
    writer = mocked_writer()
    transport = Transport(ShopConfig(bandwidth_kbit=8.0), {})  # 1,000 bytes per second
    send(transport, writer, (b"a" * 5000, b"b" * 3000), "text/html")
    assert [len(chunk) for chunk in written(writer)] == [4096, 904, 3000]
    # Each slice waits until the bytes sent so far are due: 4.096 s, 5 s, 8 s in.
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)
    assert 3.5 < sleeps[0] <= 4.096 and 7.5 < sleeps[-1] <= 8.0
