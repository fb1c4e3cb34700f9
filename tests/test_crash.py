from __future__ import annotations

import subprocess
import sys

import pytest

from plt.job import crash


def test_parse_names_a_point_and_a_count():
    assert crash.parse("after_flush:5") == ("after_flush", 5)
    for bad in ("after_flush", "nowhere:1", "after_lease:0", "after_store:x"):
        with pytest.raises(ValueError):
            crash.parse(bad)


def test_the_process_ends_at_the_nth_time_the_point_is_reached():
    code = (
        "from plt.job import crash\n"
        "for i in range(5):\n    print(i, flush=True)\n    crash.point('after_store')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PLT_CRASH_AT": "after_store:3", "PYTHONPATH": "."})  # fmt: skip
    assert proc.returncode == crash.EXIT_STATUS
    assert proc.stdout.split() == ["0", "1", "2"]
