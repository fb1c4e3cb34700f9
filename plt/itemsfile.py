"""The job's items file: append-only JSON lines, the record of what is exported.

A SIGKILL can leave the last line half written; a later run cuts it off before
appending. Lines past the offset the job state last recorded were written but
not yet recorded: their item ids are returned so the state can catch up. The
item id is the field the job names (PLT_JOB_ITEM_ID_FIELD).
"""

from __future__ import annotations

import logging
from pathlib import Path

import ujson

logger = logging.getLogger(__name__)

_READ_SIZE = 1 << 20
DEFAULT_ITEM_ID_FIELD = "product_id"


class ItemsFileError(Exception):
    """The items file does not agree with the job state or is not JSON lines."""


def reconcile(
    path: Path, recorded_offset: int, id_field: str = DEFAULT_ITEM_ID_FIELD
) -> tuple[int, list[int]]:
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
                ids.append(_item_id(path, line, offset, id_field))
                offset += len(line) + 1
        if tail:
            f.truncate(offset)
            logger.warning(
                "Cut a half-written last line (%d bytes) off %s; it is exported again.",
                len(tail),
                path,
            )
    return len(tail), ids


def item_id_of(line: bytes, id_field: str = DEFAULT_ITEM_ID_FIELD) -> int | None:
    """The item id of an items-file line, or None when it has none."""
    try:
        item_id = ujson.loads(line)[id_field]
    except (ValueError, TypeError, KeyError):
        return None
    return item_id if isinstance(item_id, int) else None


def _item_id(path: Path, line: bytes, offset: int, id_field: str) -> int:
    item_id = item_id_of(line, id_field)
    if item_id is None:
        raise ItemsFileError(
            f"The items file {path} has a line at byte {offset} that is not an "
            f"item with an integer {id_field!r}: {line[:80]!r}."
        )
    return item_id
