"""The job's items file: append-only JSON lines, the record of what is exported.

A SIGKILL can leave the last line half written; a later run cuts it off before
appending. Lines past the offset the job state last recorded were written but
not yet recorded: their product ids are returned so the state can catch up.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ujson

logger = logging.getLogger(__name__)

_READ_SIZE = 1 << 20


class ItemsFileError(Exception):
    """The items file does not agree with the job state or is not JSON lines."""


def reconcile(path: Path, recorded_offset: int) -> tuple[int, list[int]]:
    """Repair a torn last line and return (bytes cut, ids written after the offset)."""
    if not path.exists():
        if recorded_offset:
            raise ItemsFileError(
                f"The items file {path} is missing, but the job state records "
                f"{recorded_offset} bytes of exported items in it."
            )
        return 0, []
    size = path.stat().st_size
    if size < recorded_offset:
        raise ItemsFileError(
            f"The items file {path} has {size} bytes, fewer than the {recorded_offset} "
            f"the job state records as exported: it was truncated or replaced."
        )
    ids: list[int] = []
    with path.open("r+b") as f:
        if recorded_offset:
            f.seek(recorded_offset - 1)
            if f.read(1) != b"\n":
                raise ItemsFileError(
                    f"The items file {path} was changed: no line ends at byte "
                    f"{recorded_offset}, where the job state's record of it ends."
                )
        offset = recorded_offset
        tail = b""
        while chunk := f.read(_READ_SIZE):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                ids.append(_product_id(path, line, offset))
                offset += len(line) + 1
        if tail:
            f.truncate(offset)
            logger.warning(
                "Cut a half-written last line (%d bytes) off %s; it is exported again.",
                len(tail),
                path,
            )
    return len(tail), ids


def product_id_of(line: bytes) -> int | None:
    """The product id of an items-file line, or None when it is not a product item."""
    try:
        product_id = ujson.loads(line)["product_id"]
    except (ValueError, TypeError, KeyError):
        return None
    return product_id if isinstance(product_id, int) else None


def _product_id(path: Path, line: bytes, offset: int) -> int:
    product_id = product_id_of(line)
    if product_id is None:
        raise ItemsFileError(
            f"The items file {path} has a line at byte {offset} that is not a "
            f"product item: {line[:80]!r}."
        )
    return product_id
