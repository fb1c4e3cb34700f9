from __future__ import annotations

import base64
import gzip
import random
import zlib

import brotli
import pytest
from scrapy.downloadermiddlewares.httpcompression import ACCEPTED_ENCODINGS

from plt.codecs import zstd
from plt.decoding import (
    CHUNK,
    HeadDecoder,
    IncompleteBody,
    ResponseTooLarge,
    decode,
    looks_like_text,
    sniff,
    trimmable_encodings,
)

HEAD = b"<html><main class='product'>block</main>"
# Bulk that compresses like a real page's inline blobs, not to nothing.
PAGE = HEAD + b"<section>" + base64.b64encode(random.Random(1).randbytes(600_000)) + b"</section>"
MARKER = b"</main>"


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODERS = {
    b"gzip": gzip.compress,
    b"deflate": zlib.compress,
    b"br": lambda data: brotli.compress(data, quality=5),
    b"zstd": zstd.compress,
}


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_stops_at_the_marker_without_decoding_the_rest(encoding):
    body = ENCODERS[encoding](PAGE)
    decoder = decode(body, encoding, MARKER)
    assert (decoder.result(), decoder.found, decoder.encoding) == (HEAD, True, encoding)
    # A zstd block (up to 128 KiB) decodes only once all of it is in.
    assert decoder.consumed <= 2 * CHUNK < len(body)


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_fed_piece_by_piece_as_a_download_arrives(encoding):
    body = ENCODERS[encoding](PAGE)
    decoder = HeadDecoder(encoding, MARKER)
    pieces = [body[i : i + 500] for i in range(0, len(body), 500)]
    fed = 0
    for piece in pieces:
        fed += 1
        if decoder.feed(piece):
            break
    assert decoder.result() == HEAD
    assert fed < len(pieces)  # the rest of the body was never needed


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_whole_body_without_marker(encoding):
    assert decode(ENCODERS[encoding](PAGE), encoding).result() == PAGE


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_output_is_bounded_by_what_is_decoded_not_by_a_trailer(encoding):
    with pytest.raises(ResponseTooLarge):
        decode(ENCODERS[encoding](PAGE), encoding, b"</nope>", max_size=100_000)


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_truncated_stream_is_incomplete_not_too_large(encoding):
    body = ENCODERS[encoding](PAGE)
    with pytest.raises(IncompleteBody, match="before its end"):
        decode(body[: len(body) // 2], encoding, max_size=10_000_000)
    # Cut inside the head: the marker never comes.
    with pytest.raises(IncompleteBody):
        decode(body[:12], encoding, MARKER)


def test_truncated_gzip_trailer_is_not_trusted():
    # The last four bytes of a cut body are not an ISIZE: 779119407 bytes is no reason to give up.
    body = gzip.compress(PAGE)
    with pytest.raises(IncompleteBody):
        decode(body[:-8], b"gzip", max_size=8_000_000)


def test_raw_deflate_sent_as_deflate():
    decoder = decode(raw_deflate(PAGE), b"deflate", MARKER)
    assert decoder.result() == HEAD
    assert decoder.encoding == b"raw-deflate"


@pytest.mark.parametrize("declared", [b"gzip", b"deflate", b"br", b"zstd"])
def test_plain_body_with_a_content_encoding_is_read_as_plain(declared):
    decoder = decode(PAGE, declared, MARKER)
    assert (decoder.result(), decoder.encoding) == (HEAD, b"identity")


def test_compressed_body_without_content_encoding_is_decoded():
    decoder = decode(gzip.compress(PAGE), b"identity", MARKER)
    assert (decoder.result(), decoder.encoding) == (HEAD, b"gzip")


def test_body_in_another_encoding_than_declared():
    decoder = decode(zstd.compress(PAGE), b"gzip", MARKER)
    assert (decoder.result(), decoder.encoding) == (HEAD, b"zstd")


def test_damaged_compressed_body_is_incomplete_not_read_as_text():
    body = gzip.compress(PAGE)
    damaged = body[:40] + bytes(range(256)) * 4
    with pytest.raises(IncompleteBody):
        decode(damaged, b"gzip")


@pytest.mark.parametrize("encoding", [b"gzip", b"zstd"])
def test_concatenated_members_and_frames(encoding):
    body = ENCODERS[encoding](b"<main>ab") + ENCODERS[encoding](b"cd</main>tail")
    assert decode(body, encoding, MARKER).result() == b"<main>abcd</main>"


def test_sniff():
    assert sniff(gzip.compress(b"x")) == b"gzip"
    assert sniff(zlib.compress(b"x")) == b"deflate"
    assert sniff(zstd.compress(b"x")) == b"zstd"
    assert sniff(b"<!DOCTYPE html>") == b"identity"


def test_looks_like_text():
    assert looks_like_text(PAGE)
    assert not looks_like_text(ENCODERS[b"br"](PAGE))
    assert looks_like_text("<p>Café</p>".encode()[:11])  # a character cut at the end
    assert not looks_like_text(b"\x8b\xff\x87<!DOCTYPE html>")  # a raw brotli meta-block


def test_trimmable_encodings_are_what_scrapy_accepts_here():
    assert trimmable_encodings() == ACCEPTED_ENCODINGS


@pytest.mark.parametrize("encoding", [b"gzip", b"zstd"])
def test_members_split_anywhere_near_their_boundary(encoding):
    first = ENCODERS[encoding](b"<main>ab")
    if encoding == b"zstd":
        first = zstd.compress(b"<main>ab", options={zstd.CompressionParameter.checksum_flag: 1})
    body = first + ENCODERS[encoding](b"cd</main>tail")
    for cut in range(max(1, len(first) - 12), min(len(body), len(first) + 12)):
        decoder = HeadDecoder(encoding)
        decoder.feed(body[:cut])
        decoder.feed(body[cut:])
        assert decoder.result() == b"<main>abcd</main>tail", cut
    one_byte = HeadDecoder(encoding)
    for piece in (body[: len(first)], body[len(first) : len(first) + 1], body[len(first) + 1 :]):
        one_byte.feed(piece)
    assert one_byte.result() == b"<main>abcd</main>tail"


@pytest.mark.parametrize("encoding", [b"gzip", b"zstd"])
def test_trailing_bytes_after_the_last_member_are_ignored(encoding):
    body = ENCODERS[encoding](PAGE) + b"\n"
    assert decode(body, encoding).result() == PAGE


def test_streamed_format_comes_from_the_first_bytes():
    raw = HeadDecoder(b"deflate", MARKER)
    assert raw.feed(raw_deflate(PAGE)[:4096]) and raw.encoding == b"raw-deflate"
    unlabelled = HeadDecoder(b"identity", MARKER)
    assert unlabelled.feed(gzip.compress(PAGE)[:4096]) and unlabelled.encoding == b"gzip"
    plain = HeadDecoder(b"br", MARKER)
    assert plain.feed(PAGE[:4096]) and plain.encoding == b"identity"


def test_a_body_shorter_than_the_sniffing_window():
    assert HeadDecoder(b"gzip", MARKER).feed(gzip.compress(b"<main>x</main>")) is False
    short = HeadDecoder(b"gzip")
    short.feed(gzip.compress(b"ab"))
    assert short.result() == b"ab"
    empty = HeadDecoder(b"identity")
    assert empty.result() == b""
