"""Incremental, bounded decoding of HTTP bodies, optionally only up to a marker.

Every ``Content-Encoding`` Scrapy accepts (gzip, deflate, br, zstd) is decoded
in chunks of about ``CHUNK`` bytes of output at most (see plt.codecs), so
neither a page we need only the head of nor a decompression bomb is ever
inflated whole. Nothing here
trusts what a body says about itself (a gzip ISIZE trailer, a declared
encoding): the size limit applies to what was actually decoded, a stream that
ends before its end is ``IncompleteBody``, and a body that is not what its
``Content-Encoding`` says is decoded as what it is.
"""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest

from plt.codecs import (
    DECODE_ERRORS,
    GZIP_MAGIC,
    ZSTD_MAGIC,
    Codec,
    codec_for,
    trimmable_encodings,
)

__all__ = [
    "CHUNK",
    "DECODE_ERRORS",
    "IDENTITY",
    "HeadDecoder",
    "IncompleteBody",
    "ResponseTooLarge",
    "decode",
    "is_supported",
    "sniff",
    "trimmable_encodings",
]

CHUNK = 64 * 1024
IDENTITY = b"identity"


class ResponseTooLarge(IgnoreRequest):
    """The decoded body would exceed DOWNLOAD_MAXSIZE: a permanent answer."""


class IncompleteBody(Exception):
    """The encoded stream ended before its end, or broke off: a failure that may pass."""


def sniff(body: bytes) -> bytes:
    """What a body's first bytes say it is: gzip, zstd, deflate (zlib) or identity."""
    if body.startswith(GZIP_MAGIC):
        return b"gzip"
    if body.startswith(ZSTD_MAGIC):
        return b"zstd"
    if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        return b"deflate"
    return IDENTITY


def is_supported(encoding: bytes) -> bool:
    return encoding in (b"", IDENTITY, b"x-gzip", *trimmable_encodings())


SNIFF_BYTES = 64  # enough to tell a magic number, or text from compressed data


def actual_encoding(declared: bytes, first: bytes) -> bytes:
    """What a body that starts with ``first`` most likely is, given its ``Content-Encoding``.

    A magic number wins over the header; "deflate" may be zlib-wrapped (RFC 9110) or
    raw (some servers); a compressed label on text is a plain page.
    """
    seen = sniff(first)
    if seen in (b"gzip", b"zstd"):
        return seen
    if declared != IDENTITY and seen == IDENTITY and looks_like_text(first):
        return IDENTITY
    if declared == b"deflate":
        return b"deflate" if seen == b"deflate" else b"raw-deflate"
    return declared


class HeadDecoder:
    """Decode a body fed in pieces, keeping at most ``max_size`` bytes of output.

    The format is chosen from the body's first bytes (``actual_encoding``), so
    ``encoding`` is what the body was, whatever its header said. With a
    ``marker``, decoding stops right after it (``found``) and the codec is freed:
    the rest of the body is never decoded.
    """

    def __init__(
        self,
        encoding: bytes,
        marker: bytes | None = None,
        max_size: int = 0,
        *,
        sniff_format: bool = True,
    ) -> None:
        self.declared = self.encoding = encoding or IDENTITY
        self.sniff_format = sniff_format
        self.marker = marker
        self.max_size = max_size
        self.head = bytearray()
        self.found = False
        self.consumed = 0  # encoded bytes fed so far
        self._early = b""  # the first bytes, until the format can be told
        self._codec: Codec | None = None

    def feed(self, data: bytes) -> bool:
        """Decode ``data``; True once the marker was found (nothing more is needed)."""
        if self.found:
            return True
        self.consumed += len(data)
        if self._codec is None:
            self._early += data
            if len(self._early) < SNIFF_BYTES:
                return False
            data, self._early = self._early, b""
            self._start(data)
        codec = self._codec
        assert codec is not None
        codec.feed(data)
        while not self.found:
            out = codec.read(CHUNK)
            if not out:
                break
            start = max(0, len(self.head) - len(self.marker) + 1) if self.marker else 0
            self.head += out
            if self.marker:
                end = self.head.find(self.marker, start)
                if end >= 0:
                    del self.head[end + len(self.marker) :]
                    self.found = True
                    # A br or zstd window can be several MiB: free it now, not when
                    # the download ends.
                    self._codec = None
            if self.max_size and len(self.head) > self.max_size:
                raise ResponseTooLarge(f"decoded body exceeds DOWNLOAD_MAXSIZE={self.max_size}")
        return self.found

    def _start(self, first: bytes) -> None:
        if self.sniff_format:
            self.encoding = actual_encoding(self.declared, first)
        self._codec = codec_for(self.encoding)

    def result(self) -> bytes:
        """The decoded head, or the whole body; IncompleteBody if the stream broke off."""
        self.complete()
        return bytes(self.head)

    def complete(self) -> None:
        """Raise ResponseTooLarge past ``max_size`` (a feed that raised it stays so), or
        IncompleteBody unless the marker was found or the stream ended."""
        if self.max_size and len(self.head) > self.max_size:
            raise ResponseTooLarge(f"decoded body exceeds DOWNLOAD_MAXSIZE={self.max_size}")
        if self._codec is None and not self.found:  # a body shorter than SNIFF_BYTES
            early, self._early = self._early, b""
            self._start(early)
            self.consumed -= len(early)
            self.feed(early)
        if not self.found and not (self._codec is not None and self._codec.eof):
            raise IncompleteBody(
                f"{self.encoding.decode()} body ended after {self.consumed} bytes, before its end"
            )


def decode(
    body: bytes, encoding: bytes, marker: bytes | None = None, max_size: int = 0
) -> HeadDecoder:
    """Decode a whole received body; the returned decoder has its ``result()``.

    The format comes from the body's first bytes (see ``actual_encoding``); a
    body that still fails from its first bytes is tried as what else it looks
    like; one that breaks off mid-stream is ``IncompleteBody``.
    """
    declared = encoding or IDENTITY
    first = actual_encoding(declared, body[:SNIFF_BYTES])
    candidates = [first, declared, sniff(body)]
    if declared == b"deflate":
        candidates.append(b"raw-deflate")
    error: Exception | None = None
    for candidate in dict.fromkeys(candidates):  # in order, without repeats
        if candidate == IDENTITY != declared and not looks_like_text(body):
            continue  # damaged compressed data is not a plain page
        decoder = HeadDecoder(candidate, marker, max_size, sniff_format=False)
        decoder.declared = declared
        try:
            # In slices, so that ``consumed`` tells how much was needed.
            for start in range(0, len(body), CHUNK):
                if decoder.feed(body[start : start + CHUNK]):
                    break
            decoder.complete()  # IncompleteBody for a stream that broke off
        except DECODE_ERRORS as exc:
            error = exc
            continue
        return decoder
    raise IncompleteBody(f"{declared.decode()} body is damaged: {error}")


_CONTROL = frozenset([*range(9), *range(14, 32)])


def looks_like_text(body: bytes, probe: int = 512) -> bool:
    """UTF-8 without control bytes in the first ``probe`` bytes: compressed data never is."""
    head = body[:probe]
    if _CONTROL.intersection(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut by the probe's end is still text.
        return exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
    return True
