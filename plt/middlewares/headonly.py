"""Keep only the head of large pages, decompressing no further than needed.

A product page is ~1.5 MB of HTML (~0.45 MB gzip on the wire) but the item
needs only the product block at its top. Scrapy's HttpCompressionMiddleware
would build the whole decompressed body, and every callback-bound response
then holds it until the scraper is done. This middleware sits on the wire side
of HttpCompressionMiddleware, inflates a response flagged with
``meta["plt_head_until"]`` only until that marker, and hands on a response
of a few KB with no ``Content-Encoding``. Responses without the flag pass
untouched.
"""

from __future__ import annotations

import logging
import struct
import zlib
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.responsetypes import responsetypes

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

META_KEY = "plt_head_until"
_CHUNK = 64 * 1024


class ResponseTooLarge(IgnoreRequest):
    """The decompressed page would exceed DOWNLOAD_MAXSIZE."""


def gzip_declared_size(body: bytes) -> int | None:
    """ISIZE from a gzip trailer: the decompressed length modulo 2**32."""
    if len(body) < 18 or body[:2] != b"\x1f\x8b":
        return None
    return struct.unpack("<I", body[-4:])[0]


def inflate_head(body: bytes, marker: bytes, max_size: int = 0) -> tuple[bytes, bool]:
    """Inflate gzip/zlib/raw-deflate ``body`` up to and including ``marker``.

    Returns the head and whether the marker was found. Without the marker the
    whole stream is inflated, bounded by ``max_size`` (0 = unbounded).
    """
    wbits = 47 if body[:2] == b"\x1f\x8b" or (body[:1] == b"\x78") else -15
    decompressor = zlib.decompressobj(wbits=wbits)
    out = bytearray()
    data = body
    while data and not decompressor.eof:
        start = max(0, len(out) - len(marker))
        out += decompressor.decompress(data, _CHUNK)
        data = decompressor.unconsumed_tail
        found = out.find(marker, start)
        if found >= 0:
            return bytes(out[: found + len(marker)]), True
        if max_size and len(out) > max_size:
            raise ResponseTooLarge(f"decompressed body exceeds {max_size} bytes")
    return bytes(out), False


class HeadOnlyMiddleware:
    """Downloader middleware; order it just above HttpCompressionMiddleware (590)."""

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("PLT_HEAD_ONLY_ENABLED", True):
            raise NotConfigured
        self.stats = crawler.stats
        self.max_size = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        self.warn_size = crawler.settings.getint("DOWNLOAD_WARNSIZE")
        self._warned = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HeadOnlyMiddleware:
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        self.stats.inc_value("plt/bytes/wire", len(response.body))
        marker = request.meta.get(META_KEY)
        if not marker or response.status != 200:
            return response
        encoding = response.headers.get(b"Content-Encoding", b"").strip().lower()
        if encoding not in (b"", b"identity", b"gzip", b"x-gzip", b"deflate"):
            return response  # br/zstd: let HttpCompressionMiddleware decode it all
        max_size = request.meta.get("download_maxsize", self.max_size)
        body = response.body
        declared = len(body)
        marker_bytes = marker.encode()
        if encoding in (b"", b"identity"):
            end = body.find(marker_bytes)
            head = body if end < 0 else body[: end + len(marker_bytes)]
        else:
            declared = gzip_declared_size(body) or 0
            self._check_size(request, declared, max_size)
            head, _ = inflate_head(body, marker_bytes, max_size)
            declared = max(declared, len(head))
        self._check_size(request, declared, max_size)
        self.stats.inc_value("plt/bytes/decoded", len(head))
        self.stats.inc_value("plt/bytes/skipped", declared - len(head))
        headers = response.headers.copy()
        headers.pop(b"Content-Encoding", None)
        headers.pop(b"Content-Length", None)
        # The declared type was that of the encoded body: pick it again, as
        # HttpCompressionMiddleware does after decoding.
        respcls = responsetypes.from_args(headers=headers, url=response.url, body=head)
        return response.replace(
            cls=respcls, body=head, headers=headers, flags=[*response.flags, "head"]
        )

    def _check_size(self, request: Request, size: int, max_size: int) -> None:
        if max_size and size > max_size:
            raise ResponseTooLarge(
                f"{request.url}: {size} bytes decompressed exceeds DOWNLOAD_MAXSIZE={max_size}"
            )
        if self.warn_size and size > self.warn_size and not self._warned:
            self._warned = True
            logger.warning(
                "%s: %d bytes decompressed exceeds DOWNLOAD_WARNSIZE=%d (warned once)",
                request.url,
                size,
                self.warn_size,
            )
