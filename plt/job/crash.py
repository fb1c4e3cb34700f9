"""Crash points: end the process at a named point, for tests that kill and resume.

``PLT_CRASH_AT=after_flush:5`` (an environment variable, read once) ends the
process with ``os._exit`` at the 5th time the point ``after_flush`` is reached:
nothing is flushed, closed or committed after it, as with ``kill -9``.

Points: ``after_flush`` (an item's line is flushed to the items file, before
its record), ``after_record`` (the export is recorded), ``after_store`` (a
request is stored in the job state), ``after_lease`` (a request is leased).
"""

from __future__ import annotations

import os
import sys

ENV = "PLT_CRASH_AT"
POINTS = frozenset({"after_flush", "after_record", "after_store", "after_lease"})
EXIT_STATUS = 86

_target: tuple[str, int] | None = None
_count = 0
_loaded = False


def parse(value: str) -> tuple[str, int]:
    """``name:N`` (N >= 1); ValueError for anything else."""
    name, _, count = value.partition(":")
    if name not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{ENV}={value!r}: expected <point>:<N>, point one of {', '.join(sorted(POINTS))}"
        )
    return name, int(count)


def _load() -> None:
    global _target, _loaded
    _loaded = True
    value = os.environ.get(ENV)
    _target = parse(value) if value else None


def point(name: str) -> None:
    """Reached the point ``name``: end the process if this is the crash asked for."""
    global _count
    if not _loaded:
        _load()
    if _target is None or _target[0] != name:
        return
    _count += 1
    if _count >= _target[1]:
        sys.stderr.write(f"{ENV}: crashing at {name} #{_count}\n")
        sys.stderr.flush()
        os._exit(EXIT_STATUS)
