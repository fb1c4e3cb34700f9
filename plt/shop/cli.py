"""Command line of the demo shop, shared by ``python -m plt.shop`` and ``scrapy shop``.

The ShopConfig fields are the single list of shop options: each becomes
``--field-name`` here, and plt.shop.process turns a ShopConfig back into the same
arguments with ``config_to_argv``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from plt.shop import truth
from plt.shop.catalog import (
    ANY_INT,
    COUNT,
    ENCODINGS,
    FLAG,
    IDS,
    KNOWN_ENCODINGS,
    POSITIVE,
    RATE,
    Catalog,
    ShopConfig,
)
from plt.shop.options import parse_ids

logger = logging.getLogger(__name__)

DESCRIPTION = "Serve the demo retailer (the retailer contract) on a loopback port."
READY_PREFIX = "PLT demo shop listening on "


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(convert: Callable[[str], Any], low: float | None, high: float | None) -> Any:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text} is not within {bounds}")
        return value

    return parse


def _loopback(text: str) -> str:
    if not is_loopback(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a loopback address")
    return text


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a yes/no value: {text!r}")


def _encodings(text: str) -> str:
    unknown = {e.strip() for e in text.split(",") if e.strip()} - set(KNOWN_ENCODINGS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown encoding(s) {', '.join(sorted(unknown))}; known: {', '.join(KNOWN_ENCODINGS)}"
        )
    return text


def _ids(text: str) -> str:
    try:
        parse_ids(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (expected ids like 123,456)") from None
    return text


def _field_type(f: dataclasses.Field[Any]) -> Callable[[str], Any]:
    kind = f.metadata["kind"]
    if kind == ENCODINGS:
        return _encodings
    if kind == FLAG:
        return _flag
    if kind == IDS:
        return _ids
    convert = float if isinstance(f.default, float) else int
    low = {COUNT: 0, POSITIVE: 1, RATE: 0.0, ANY_INT: None}[kind]
    return _number(convert, low, 1.0 if kind == RATE else None)


def add_shop_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every demo shop option to ``parser``."""
    group = parser.add_argument_group("demo shop")
    group.add_argument("--host", type=_loopback, default="127.0.0.1", help="loopback address")
    group.add_argument(
        "--port", type=_number(int, 0, 65535), default=0, help="port, 0 for any free port"
    )
    for f in dataclasses.fields(ShopConfig):
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=_field_type(f),
            default=f.default,
            metavar={ENCODINGS: "LIST", FLAG: "0|1", IDS: "IDS"}.get(f.metadata["kind"], "N"),
            help=f"{f.metadata['help']} (default {f.default if f.default != '' else 'none'})",
        )
    group.add_argument(
        "--no-faults",
        action="store_true",
        help="turn every fault off (each rate, count, page and id list marked as a fault)",
    )
    group.add_argument("--access-log", action="store_true", help="log every request to stderr")
    group.add_argument(
        "--hits-file",
        metavar="FILE",
        help="keep the request counts of faulty URLs in FILE across restarts "
        "(read at start, written at stop)",
    )
    group.add_argument(
        "--write-ground-truth",
        metavar="FILE",
        help="write the expected crawl items as JSONL to FILE (- for stdout) and exit",
    )
    group.add_argument(
        "--write-expected-failures",
        metavar="FILE",
        help="write the products a correct crawl must give up as JSONL to FILE and exit",
    )
    group.add_argument("--base-url", metavar="URL", help="shop URL used in the files written")


def config_from_args(opts: argparse.Namespace) -> ShopConfig:
    config = ShopConfig(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(ShopConfig)})
    return config.without_faults() if opts.no_faults else config


def config_to_argv(config: ShopConfig) -> list[str]:
    """Command line options that rebuild ``config``."""
    # "--name=value" keeps a negative seed from reading as an option.
    return [
        f"--{f.name.replace('_', '-')}={_arg(getattr(config, f.name))}"
        for f in dataclasses.fields(config)
    ]


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return value if isinstance(value, str) else repr(value)


def check_args(opts: argparse.Namespace) -> str | None:
    """A usage error message, or None when the options go together."""
    writes = opts.write_ground_truth or opts.write_expected_failures
    if writes and not opts.base_url:
        return "--write-ground-truth and --write-expected-failures need --base-url"
    if opts.base_url and not writes:
        return "--base-url only applies to --write-ground-truth and --write-expected-failures"
    try:
        config_from_args(opts)  # options that must agree with each other
    except ValueError as exc:
        return str(exc)
    return None


def write_ground_truth(config: ShopConfig, path: str, base_url: str) -> int:
    """Write the expected items as JSONL, sorted by product id; returns the item count."""
    count = _write_jsonl(path, truth.expected_items(Catalog(config), base_url))
    logger.info("Wrote %d expected items to %s", count, path)
    return count


def write_expected_failures(config: ShopConfig, path: str, base_url: str) -> int:
    """Write the products a correct crawl gives up (id, url, reason) as JSONL, by id."""
    count = _write_jsonl(path, truth.expected_failures(Catalog(config), base_url))
    logger.info("Wrote %d expected failures to %s", count, path)
    return count


def _write_jsonl(path: str, rows: Iterable[dict[str, Any]]) -> int:
    with contextlib.ExitStack() as stack:
        out = sys.stdout if path == "-" else stack.enter_context(open(path, "w", encoding="utf-8"))
        count = 0
        for row in rows:
            out.write(json.dumps(row) + "\n")
            count += 1
    return count


def configure_logging(level: int | str = logging.INFO) -> None:
    # stdout carries only the "listening" line, so logs go to stderr.
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level,
            stream=sys.stderr,
            format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
        )


def _announce(url: str) -> None:
    print(READY_PREFIX + url, flush=True)


def run(opts: argparse.Namespace) -> int:
    """Serve the shop (or write ground truth) as ``opts`` says; returns an exit code."""
    config = config_from_args(opts)
    if opts.write_ground_truth or opts.write_expected_failures:
        if opts.write_ground_truth:
            write_ground_truth(config, opts.write_ground_truth, opts.base_url)
        if opts.write_expected_failures:
            write_expected_failures(config, opts.write_expected_failures, opts.base_url)
        return 0
    # Imported here so that option handling (and ShopProcess) does not load aiohttp.
    from plt.shop.server import serve

    hits_file = Path(opts.hits_file) if opts.hits_file else None
    asyncio.run(
        serve(
            config,
            opts.host,
            opts.port,
            access_log=opts.access_log,
            on_ready=_announce,
            hits_file=hits_file,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plt.shop", description=DESCRIPTION)
    add_shop_arguments(parser)
    opts = parser.parse_args(argv)
    error = check_args(opts)
    if error:
        parser.error(error)
    configure_logging()
    return run(opts)
