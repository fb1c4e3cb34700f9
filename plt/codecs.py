"""Streaming decompressors with one small interface, for plt.decoding.

Each takes input with ``feed`` and gives at most ``limit`` bytes of output per
``read`` (brotli's limit is soft: up to 32 KiB more); ``eof`` says the stream
ended where it should. gzip members and zstd frames may follow one another;
bytes after the last that start no other are ignored, as gzip(1) does.
"""

from __future__ import annotations

import zlib
from typing import Protocol

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

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Codec(Protocol):
    eof: bool

    def feed(self, data: bytes) -> None: ...
    def read(self, limit: int) -> bytes: ...


class _Members:
    """Self-delimiting members (gzip members, zstd frames) one after another.

    Bytes after a member that do not start another one are trailing garbage and
    are ignored, as gzip(1) does; a member that starts and breaks off is not.
    """

    magic = b""

    def __init__(self) -> None:
        self._d: object | None = self._new()
        self._pending = b""
        self._members = 0

    def _new(self) -> object:
        raise NotImplementedError

    def _step(self, data: bytes, limit: int) -> tuple[bytes, bool]:
        """Decode from ``data`` (rest back into ``_pending``): (output, member ended)."""
        raise NotImplementedError

    def _starts_member(self, data: bytes) -> bool:
        return data.startswith(self.magic)

    @property
    def eof(self) -> bool:
        return self._d is None and not self._starts_member(self._pending)

    def feed(self, data: bytes) -> None:
        self._pending += data

    def read(self, limit: int) -> bytes:
        while True:
            if self._d is None:  # between members
                if not self._starts_member(self._pending):
                    return b""  # garbage, or too few bytes yet to tell
                self._d = self._new()
            data, self._pending = self._pending, b""
            out, ended = self._step(data, limit)
            if ended:
                self._d, self._members = None, self._members + 1
            if out:
                return out
            if not ended and not self._pending:
                return b""  # needs more input


class _Zlib(_Members):
    """gzip (any number of members), zlib-wrapped or raw deflate."""

    magic = GZIP_MAGIC

    def __init__(self, raw: bool = False) -> None:
        self._wbits = -15 if raw else 47  # 47: gzip or zlib header, detected
        super().__init__()

    def _new(self) -> object:
        return zlib.decompressobj(wbits=self._wbits)

    def _step(self, data: bytes, limit: int) -> tuple[bytes, bool]:
        d = self._d
        # Called with no input too: zlib may hold output that max_length held back.
        out = d.decompress(data, limit)  # type: ignore[attr-defined]
        if d.eof:  # type: ignore[attr-defined]
            self._pending = d.unused_data + self._pending  # type: ignore[attr-defined]
            return out, True
        self._pending = d.unconsumed_tail + self._pending  # type: ignore[attr-defined]
        return out, False


class _Zstd(_Members):
    """zstd, including several frames one after another."""

    magic = ZSTD_MAGIC

    def _new(self) -> object:
        return zstd.ZstdDecompressor()

    def _starts_member(self, data: bytes) -> bool:
        # A data frame, or a skippable frame (magic 0x184D2A5?).
        return data.startswith(ZSTD_MAGIC) or (
            len(data) >= 4 and data[0] & 0xF0 == 0x50 and data[1:4] == b"\x2a\x4d\x18"
        )

    def _step(self, data: bytes, limit: int) -> tuple[bytes, bool]:
        d = self._d
        if not d.needs_input:  # type: ignore[attr-defined]
            self._pending, data = data + self._pending, b""
        out = d.decompress(data, limit)  # type: ignore[attr-defined]
        if d.eof:  # type: ignore[attr-defined]
            self._pending = d.unused_data + self._pending  # type: ignore[attr-defined]
            return out, True
        return out, False


class _Brotli:
    """br. Bytes after its end are an error of the decoder: such a body is damaged."""

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


def codec_for(encoding: bytes) -> Codec:
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        return _Zlib()
    if encoding == b"raw-deflate":
        return _Zlib(raw=True)
    if encoding == b"br" and brotli is not None:
        return _Brotli()
    if encoding == b"zstd" and zstd is not None:
        return _Zstd()
    return _Identity()
