"""Decode every response in bounded chunks, and product pages only up to their block.

A product page is ~1.5 MB of HTML (~0.45 MB compressed on the wire) but the
item needs only the product block at its top. Scrapy's HttpCompressionMiddleware
would build the whole decoded body, and every callback-bound response then
holds it until the scraper is done. This middleware sits on the wire side of
HttpCompressionMiddleware (590) and decodes every encoded response itself
(gzip, deflate, br, zstd: see plt.decoding), so Scrapy's never has to:

- A response flagged with ``meta["plt_head_until"]`` is decoded as its bytes
  arrive (``bytes_received``) and only up to that marker; with
  ``PLT_HEAD_STOP_TRANSFER`` the download is then ended, so the rest of the
  page is never transferred either.
- Anything else is decoded whole, bounded by DOWNLOAD_MAXSIZE.
- A body that is not what its ``Content-Encoding`` says is decoded as what it
  is (``plt/decode/mislabelled``); a compressed stream that breaks off before
  its end is retried like a network error, never taken as "too large".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from scrapy import signals
from scrapy.downloadermiddlewares.httpcompression import ACCEPTED_ENCODINGS
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import NotConfigured, StopDownload
from scrapy.http import TextResponse
from scrapy.responsetypes import responsetypes

from plt.decoding import (
    DECODE_ERRORS,
    IDENTITY,
    HeadDecoder,
    IncompleteBody,
    ResponseTooLarge,
    decode,
    is_supported,
    sniff,
    trimmable_encodings,
)

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Headers, Response

__all__ = ["META_KEY", "HeadOnlyMiddleware", "IncompleteBody", "ResponseTooLarge"]

logger = logging.getLogger(__name__)

META_KEY = "plt_head_until"
SCRAPY_ACCEPT_ENCODING = b", ".join(ACCEPTED_ENCODINGS)
# Other spellings of an encoding, for the mislabelled check.
_ALIASES = {b"x-gzip": b"gzip", b"raw-deflate": b"deflate"}


class HeadOnlyMiddleware:
    """Downloader middleware; order it just above HttpCompressionMiddleware (590)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("PLT_HEAD_ONLY_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.stats = crawler.stats
        self.max_size = settings.getint("DOWNLOAD_MAXSIZE")
        self.warn_size = settings.getint("DOWNLOAD_WARNSIZE")
        self.stop_transfer = settings.getbool("PLT_HEAD_STOP_TRANSFER", True)
        self.stream_max = settings.getint("PLT_HEAD_STREAM_MAX_BYTES", 256 * 1024)
        self.retry_enabled = settings.getbool("RETRY_ENABLED")
        # With COMPRESSION_ENABLED off the user asked for plain bodies: ask for nothing.
        self.accept_encoding = (
            b", ".join(trimmable_encodings()) if settings.getbool("COMPRESSION_ENABLED") else None
        )
        self._streams: WeakKeyDictionary[Request, HeadDecoder | None] = WeakKeyDictionary()
        self._warned: set[str] = set()
        crawler.signals.connect(self.headers_received, signal=signals.headers_received)
        crawler.signals.connect(self.bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HeadOnlyMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        # Ask only for what can be decoded in bounded chunks, unless the
        # request chose its own Accept-Encoding.
        own = request.headers.get(b"Accept-Encoding") not in (None, SCRAPY_ACCEPT_ENCODING)
        if self.accept_encoding and not own:
            request.headers[b"Accept-Encoding"] = self.accept_encoding
        if self.stop_transfer and request.meta.get(META_KEY):
            # Ending a download closes its connection. Said up front, the connection
            # never goes back to the pool: a body that arrived whole in the chunk that
            # ended it would otherwise return a closing connection, and the next
            # request sent on it would be lost and sent again.
            request.headers[b"Connection"] = b"close"

    # -- streaming: decode as the bytes arrive, stop once the marker is in ------

    def headers_received(
        self, headers: Headers, body_length: int, request: Request, spider: Spider
    ) -> None:
        marker = request.meta.get(META_KEY)
        encoding = _encoding(headers)
        if marker and body_length and request.method != "HEAD" and is_supported(encoding):
            self._streams[request] = HeadDecoder(encoding, marker.encode(), self._max_size(request))

    def bytes_received(self, data: bytes, request: Request, spider: Spider) -> None:
        decoder = self._streams.get(request)
        if decoder is None:
            return
        try:
            found = decoder.feed(data)
        except ResponseTooLarge:
            raise StopDownload(fail=False) from None  # process_response tells why
        except DECODE_ERRORS:
            # Damaged, or not what it looks like: process_response decodes the whole body.
            self._streams[request] = None
            return
        if found and self.stop_transfer:
            raise StopDownload(fail=False)
        if not found and len(decoder.head) > self.stream_max:
            # No marker yet: stop holding a growing head per download in flight;
            # process_response decodes the page once, when it is in.
            self._streams[request] = None

    # -- the response ------------------------------------------------------------

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        body = response.body
        self.stats.inc_value("plt/bytes/wire", len(body))
        # A streamed decoder saw every byte of this body as it arrived; an error
        # page that showed the marker was ended there too, and is read the same.
        decoder = self._streams.pop(request, None)
        marker = request.meta.get(META_KEY) if response.status == 200 else None
        encoding = _encoding(response.headers)
        if not body or not is_supported(encoding):
            return response  # nothing to decode, or encodings Scrapy may know
        if decoder is None and encoding == IDENTITY and not marker and sniff(body) == IDENTITY:
            return response
        try:
            if decoder is None:
                marker_bytes = marker.encode() if marker else None
                decoder = decode(body, encoding, marker_bytes, self._max_size(request))
            decoded = decoder.result()
        except IncompleteBody as exc:
            return self._incomplete(request, exc)
        except ResponseTooLarge as exc:
            raise ResponseTooLarge(f"{request.url}: {exc}") from None
        self._count(request, response, decoder, encoding)
        headers = response.headers.copy()
        headers.pop(b"Content-Encoding", None)
        headers.pop(b"Content-Length", None)
        # The declared type was that of the encoded body: pick it again, as
        # HttpCompressionMiddleware does after decoding.
        respcls = responsetypes.from_args(headers=headers, url=response.url, body=decoded)
        flags = [*response.flags, "head"] if decoder.found else response.flags
        kwargs: dict[str, Any] = {"cls": respcls, "body": decoded, "headers": headers}
        if issubclass(respcls, TextResponse):
            # An encoding guessed from the compressed bytes must not stick to the
            # decoded ones (HttpCompressionMiddleware does the same).
            kwargs["encoding"] = None
        return response.replace(flags=flags, **kwargs)

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> None:
        self._streams.pop(request, None)

    # -- helpers -----------------------------------------------------------------

    def _max_size(self, request: Request) -> int:
        return int(request.meta.get("download_maxsize", self.max_size))

    def _incomplete(self, request: Request, exc: IncompleteBody) -> Request:
        """A body that broke off: retried like a dropped connection, then kept for the next run."""
        self.stats.inc_value("plt/decode/incomplete")
        retry = None
        if self.retry_enabled and not request.meta.get("dont_retry"):
            spider = self.crawler.spider
            retry = get_retry_request(request, spider=spider, reason="plt.IncompleteBody")
        if retry is None:
            raise IncompleteBody(f"{request.url}: {exc}")
        return retry

    def _count(
        self,
        request: Request,
        response: Response,
        decoder: HeadDecoder,
        declared: bytes,
    ) -> None:
        stats = self.stats
        decoded = len(decoder.head)
        stats.inc_value("plt/bytes/decoded", decoded)
        stats.inc_value("plt/bytes/skipped", max(0, len(response.body) - decoder.consumed))
        if "download_stopped" in response.flags:
            stats.inc_value("plt/head/stopped")
            length = response.headers.get(b"Content-Length")
            if length and length.isdigit():
                stats.inc_value("plt/bytes/not_transferred", int(length) - len(response.body))
        used = _ALIASES.get(decoder.encoding, decoder.encoding)
        if used != declared:
            stats.inc_value("plt/decode/mislabelled")
            self._warn_once(
                "mislabelled",
                "%s: body sent as %r is %s; decoded as what it is (warned once)",
                request.url,
                declared.decode(),
                used.decode(),
            )
        warn_size = int(request.meta.get("download_warnsize", self.warn_size))
        if warn_size and decoded > warn_size:
            stats.inc_value("plt/decode/over_warnsize")
            self._warn_once(
                "warnsize",
                "%s: %d bytes decoded exceeds DOWNLOAD_WARNSIZE=%d (warned once)",
                request.url,
                decoded,
                warn_size,
            )

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, *args)


def _encoding(headers: Headers) -> bytes:
    """The one Content-Encoding of a response; several are left to Scrapy (b"multiple")."""
    values = b",".join(headers.getlist(b"Content-Encoding")).lower().split(b",")
    names = [name.strip() for name in values if name.strip() not in (b"", IDENTITY)]
    if len(names) > 1:
        return b"multiple"
    value = names[0] if names else IDENTITY
    return _ALIASES.get(value, value)
