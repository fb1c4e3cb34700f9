from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from plt.codecs import codec_for, zstd
from plt.decoding import CHUNK

BODY = b"<main>block</main>" * 20_000  # 360 KB: several pieces
ENCODED = {
    b"gzip": gzip.compress(BODY),
    b"deflate": zlib.compress(BODY),
    b"br": brotli.compress(BODY, quality=5),
    b"zstd": zstd.compress(BODY),
}


def drain(codec, limit: int = CHUNK, slack: int = 0) -> bytes:
    out = bytearray()
    while piece := codec.read(limit):
        assert len(piece) <= limit + slack
        out += piece
    return bytes(out)


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_output_comes_in_bounded_pieces_to_the_end(encoding):
    codec = codec_for(encoding)
    codec.feed(ENCODED[encoding])
    # brotli's limit is soft: it may pass it by one 32 KiB piece of its ring buffer.
    slack = 32 * 1024 if encoding == b"br" else 0
    assert drain(codec, slack=slack) == BODY and codec.eof


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_a_cut_stream_is_not_at_its_end(encoding):
    codec = codec_for(encoding)
    codec.feed(ENCODED[encoding][: len(ENCODED[encoding]) // 2])
    drain(codec)
    assert not codec.eof


def test_a_started_second_member_must_end_but_garbage_is_ignored():
    codec = codec_for(b"gzip")
    codec.feed(ENCODED[b"gzip"] + gzip.compress(b"more")[:8])
    drain(codec)
    assert not codec.eof
    garbage = codec_for(b"gzip")
    garbage.feed(ENCODED[b"gzip"] + b"\n\x00junk")
    assert drain(garbage) == BODY and garbage.eof


def test_unknown_and_identity_are_passed_through():
    codec = codec_for(b"identity")
    codec.feed(b"plain")
    assert drain(codec) == b"plain" and codec.eof
