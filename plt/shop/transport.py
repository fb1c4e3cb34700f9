"""How the demo shop's answers travel: their encoding, their latency, their pace.

``negotiate`` picks a product page's encoding as a CDN does: the first of the
shop's ``encodings`` that the client accepts. ``Transport`` delays each response
by ``latency_ms`` (more on a connection's first one) and, with
``bandwidth_kbit``, sends its bytes at that rate (one response at a time per
HTTP/1.1 connection, so the rate is per connection).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from aiohttp import web

from plt.shop.options import ShopConfig

logger = logging.getLogger(__name__)

_PACE_SLICE = 4 * 1024  # a few TCP segments: the client sees bytes as a network brings them


def negotiate(accept_encoding: str, preferred: list[str]) -> str:
    """The first of ``preferred`` that an Accept-Encoding header allows, else identity."""
    accepted, refused = set(), set()
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        q = params.strip().removeprefix("q=")
        try:
            weight = float(q) if params else 1.0
        except ValueError:
            continue
        (accepted if weight > 0 else refused).add(name.strip())
    for encoding in preferred:
        if encoding in accepted or ("*" in accepted and encoding not in refused):
            return encoding
    return "identity"


class Transport:
    """Latency and pacing of one shop; ``counters`` is the shop's counter dict."""

    def __init__(self, config: ShopConfig, counters: dict[str, int]) -> None:
        self.counters = counters
        self._tls = config.tls
        self._delay = config.latency_ms / 1000.0
        self._rate = config.bandwidth_kbit * 1000 / 8  # bytes per second
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()

    async def wait(self, request: web.Request) -> None:
        """The response's latency; a connection's first one also pays for its handshakes.

        With ``latency_ms`` taken as the round-trip time, a new connection costs one
        more round trip (TCP), two over TLS (TCP, then a TLS 1.3 handshake).
        """
        delay, connection = self._delay, request.transport
        if delay > 0 and connection is not None and connection not in self._connections:
            self._connections.add(connection)
            delay *= 3 if self._tls else 2
        if delay > 0:
            await asyncio.sleep(delay)

    async def send(
        self,
        request: web.Request,
        parts: tuple[bytes, ...],
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send ``parts`` in order, never copying the shared bulk, paced when asked."""
        response = web.StreamResponse(headers=headers)
        response.content_type = content_type
        if content_type.startswith("text/"):
            response.charset = "utf-8"
        response.content_length = sum(len(part) for part in parts)
        try:
            await response.prepare(request)
            if self._rate:
                await self._write_paced(response, parts)
            else:
                for part in parts:
                    await response.write(part)
        except ConnectionError:
            # The client went away mid-body (a crawl stopped, or one that stops a
            # transfer once it has what it needs): not a shop error.
            self.counters["aborted"] += 1
            logger.debug("Client left during %s", request.path)
        return response  # aiohttp finishes it, quietly if the connection is gone

    async def _write_paced(self, response: web.StreamResponse, parts: tuple[bytes, ...]) -> None:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        for part in parts:
            view = memoryview(part)
            for offset in range(0, len(view), _PACE_SLICE):
                chunk = view[offset : offset + _PACE_SLICE]
                await response.write(chunk)
                sent += len(chunk)
                delay = start + sent / self._rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
