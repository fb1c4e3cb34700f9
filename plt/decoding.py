"""Incremental, bounded decoding of HTTP bodies, optionally only up to a marker.

Every ``Content-Encoding`` Scrapy accepts (gzip, deflate, br, zstd) is decoded
in chunks of at most ``CHUNK`` bytes of output, so neither a page we need only
the head of nor a decompression bomb is ever inflated whole. Nothing here
trusts what a body says about itself (a gzip ISIZE trailer, a declared
encoding): the size limit applies to what was actually decoded, a stream that
ends before its end is ``IncompleteBody``, and a body that is not what its
``Content-Encoding`` says is decoded as what it is.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from scrapy.exceptions import IgnoreRequest

try:
    import brotli
except ImportError:  # pragma: no cover - Scrapy 2.19 depends on it
    brotli = None  # type: ignore[assignment]
try:
    from backports import zstd
except ImportError:  # pragma: no cover - Python 3.14 has it built in
    try:
        from compression import zstd  # type: ignore[import-not-found,no-redef]
    except ImportError:
        zstd = None  # type: ignore[assignment]

CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
IDENTITY = b"identity"


class ResponseTooLarge(IgnoreRequest):
    """The decoded body would exceed DOWNLOAD_MAXSIZE: a permanent answer."""


class IncompleteBody(Exception):
    """The encoded stream ended before its end, or broke off: a failure that may pass."""


class _Codec(Protocol):
    eof: bool

    def feed(self, data: bytes) -> None: ...
    def read(self, limit: int) -> bytes: ...


class _Zlib:
    """gzip (any number of members), zlib-wrapped or raw deflate."""

    def __init__(self, raw: bool = False) -> None:
        self._wbits = -15 if raw else 47  # 47: gzip or zlib header, detected
        self._d = zlib.decompressobj(wbits=self._wbits)
        self._pending = b""
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._pending += data

    def read(self, limit: int) -> bytes:
        if self._d.eof:
            rest = self._d.unused_data + self._pending
            if not rest.startswith(GZIP_MAGIC):  # trailing garbage ends the body
                self.eof = True
                self._pending = b""
                return b""
            self._d = zlib.decompressobj(wbits=self._wbits)
            self._pending = rest
        data, self._pending = self._pending, b""
        out = self._d.decompress(data, limit)
        self._pending = self._d.unconsumed_tail + self._pending
        self.eof = self._d.eof and not self._d.unused_data and not self._pending
        return out


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._pending = b""
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._pending += data

    def read(self, limit: int) -> bytes:
        if self._d.is_finished():
            self.eof = True
            return b""
        data = b""
        if self._d.can_accept_more_data():
            data, self._pending = self._pending, b""
        out = self._d.process(data, output_buffer_limit=limit)
        self.eof = self._d.is_finished()
        return out


class _Zstd:
    """zstd, including several concatenated frames."""

    def __init__(self) -> None:
        self._d = zstd.ZstdDecompressor()
        self._pending = b""
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._pending += data

    def read(self, limit: int) -> bytes:
        if self._d.eof:
            self._pending = self._d.unused_data + self._pending
            if not self._pending:
                return b""
            self._d = zstd.ZstdDecompressor()
        data = b""
        if self._d.needs_input:
            data, self._pending = self._pending, b""
            if not data:
                return b""
        out = self._d.decompress(data, limit)
        self.eof = self._d.eof and not self._d.unused_data and not self._pending
        return out


class _Identity:
    def __init__(self) -> None:
        self._pending = b""
        self.eof = True  # a plain body is complete whenever the transfer is

    def feed(self, data: bytes) -> None:
        self._pending += data

    def read(self, limit: int) -> bytes:
        out, self._pending = self._pending[:limit], self._pending[limit:]
        return out


DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)
if brotli is not None:
    DECODE_ERRORS += (brotli.error,)
if zstd is not None:
    DECODE_ERRORS += (zstd.ZstdError,)


def trimmable_encodings() -> list[bytes]:
    """The encodings this module decodes incrementally, in order of preference."""
    encodings = [b"gzip", b"deflate"]
    if brotli is not None:
        encodings.append(b"br")
    if zstd is not None:
        encodings.append(b"zstd")
    return encodings


def _codec(encoding: bytes) -> _Codec:
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        return _Zlib()
    if encoding == b"raw-deflate":
        return _Zlib(raw=True)
    if encoding == b"br" and brotli is not None:
        return _Brotli()
    if encoding == b"zstd" and zstd is not None:
        return _Zstd()
    return _Identity()


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
    return encoding in (b"", IDENTITY, b"x-gzip", b"raw-deflate", *trimmable_encodings())


class HeadDecoder:
    """Decode a body fed in pieces, keeping at most ``max_size`` bytes of output.

    With a ``marker``, decoding stops right after it (``found``); the rest of
    the body is never decoded.
    """

    def __init__(self, encoding: bytes, marker: bytes | None = None, max_size: int = 0) -> None:
        self.encoding = encoding or IDENTITY
        self.marker = marker
        self.max_size = max_size
        self.head = bytearray()
        self.found = False
        self.consumed = 0  # encoded bytes fed so far
        self._codec: _Codec | None = _codec(self.encoding)

    def feed(self, data: bytes) -> bool:
        """Decode ``data``; True once the marker was found (nothing more is needed)."""
        codec = self._codec
        if codec is None:
            return True
        self.consumed += len(data)
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

    def result(self) -> bytes:
        """The decoded head, or the whole body; IncompleteBody if the stream broke off."""
        if not self.found and not (self._codec is not None and self._codec.eof):
            raise IncompleteBody(
                f"{self.encoding.decode()} body ended after {self.consumed} bytes, before its end"
            )
        return bytes(self.head)


def decode(
    body: bytes, encoding: bytes, marker: bytes | None = None, max_size: int = 0
) -> HeadDecoder:
    """Decode a whole received body; the returned decoder has its ``result()``.

    A body that fails to decode from its first bytes, or a plain one that
    starts with a compressed format's magic, is decoded as what it looks like
    (the decoder's ``encoding``); one that breaks off mid-stream is
    ``IncompleteBody``.
    """
    declared = encoding or IDENTITY
    candidates = [declared]
    if declared == b"deflate":
        candidates.append(b"raw-deflate")  # what some servers send as "deflate"
    candidates.append(sniff(body))
    if declared == IDENTITY:
        candidates.reverse()  # a gzip or zstd magic outweighs a missing header
    error: Exception | None = None
    for candidate in dict.fromkeys(candidates):  # in order, without repeats
        if candidate == IDENTITY != declared and not looks_like_text(body):
            continue  # damaged compressed data is not a plain page
        decoder = HeadDecoder(candidate, marker, max_size)
        try:
            # In slices, so that ``consumed`` tells how much was needed.
            for start in range(0, len(body), CHUNK):
                if decoder.feed(body[start : start + CHUNK]):
                    break
        except DECODE_ERRORS as exc:
            error = exc
            continue
        decoder.result()  # raises IncompleteBody for a stream that broke off
        return decoder
    raise IncompleteBody(f"{declared.decode()} body is damaged: {error}")


_CONTROL = frozenset([*range(9), *range(14, 32)])


def looks_like_text(body: bytes, probe: int = 512) -> bool:
    """No control bytes in the first ``probe`` bytes: compressed data nearly always has some."""
    return not _CONTROL.intersection(body[:probe])
