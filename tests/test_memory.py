from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plt import memory

GIB = 1024**3


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def no_proc(tmp_path: Path) -> Path:
    """A /proc/self/cgroup that places the process at the root of every hierarchy."""
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("0::/\n4:memory:/\n")
    return proc


def test_current_rss_is_the_current_not_the_peak() -> None:
    before = memory.current_rss()
    block = bytearray(64 * memory.MIB)  # zero-filled pages are touched by bytearray()
    block[::4096] = b"x" * len(block[::4096])
    grown = memory.current_rss()
    del block
    after = memory.current_rss()
    assert before > 0
    assert grown - before > 48 * memory.MIB
    assert after < grown - 32 * memory.MIB  # comes down again, unlike ru_maxrss


def test_cgroup_v2_limit(tmp_path: Path, no_proc: Path) -> None:
    write(tmp_path / "cg" / "memory.max", "1073741824\n")
    assert memory.cgroup_memory_limit(tmp_path / "cg", no_proc) == GIB


def test_cgroup_v2_max_means_unlimited(tmp_path: Path, no_proc: Path) -> None:
    write(tmp_path / "cg" / "memory.max", "max\n")
    assert memory.cgroup_memory_limit(tmp_path / "cg", no_proc) is None


def test_cgroup_v1_limit(tmp_path: Path, no_proc: Path) -> None:
    write(tmp_path / "cg" / "memory" / "memory.limit_in_bytes", str(512 * memory.MIB))
    assert memory.cgroup_memory_limit(tmp_path / "cg", no_proc) == 512 * memory.MIB


def test_cgroup_v1_huge_number_means_unlimited(tmp_path: Path, no_proc: Path) -> None:
    write(tmp_path / "cg" / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    assert memory.cgroup_memory_limit(tmp_path / "cg", no_proc) is None


def test_no_cgroup_files(tmp_path: Path, no_proc: Path) -> None:
    assert memory.cgroup_memory_limit(tmp_path / "nothing", no_proc) is None
    assert memory.cgroup_memory_limit(tmp_path / "nothing", tmp_path / "no_proc") is None


@pytest.mark.parametrize("junk", ["", "garbage", "-1", "0"])
def test_unreadable_limit_is_ignored(tmp_path: Path, no_proc: Path, junk: str) -> None:
    write(tmp_path / "cg" / "memory.max", junk)
    assert memory.cgroup_memory_limit(tmp_path / "cg", no_proc) is None


def test_nested_cgroup_takes_the_tightest_limit_on_the_path(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("0::/jobs/job1\n")
    write(root / "memory.max", "max")
    write(root / "jobs" / "memory.max", str(2 * GIB))
    write(root / "jobs" / "job1" / "memory.max", str(GIB))
    write(root / "other" / "memory.max", "1")  # not on the path: ignored
    assert memory.cgroup_memory_limit(root, proc) == GIB

    write(root / "jobs" / "job1" / "memory.max", "max")
    assert memory.cgroup_memory_limit(root, proc) == 2 * GIB


def test_nested_cgroup_v1(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("5:cpu,cpuacct:/x\n4:memory:/process_api/abc\n0::/\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    write(root / "memory" / "process_api" / "abc" / "memory.limit_in_bytes", str(GIB))
    assert memory.cgroup_memory_limit(root, proc) == GIB


def test_parent_directory_parts_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("0::/../outside\n")
    write(tmp_path / "outside" / "memory.max", "1")
    assert memory.cgroup_memory_limit(root, proc) is None


def test_this_machine_does_not_crash() -> None:
    limit = memory.cgroup_memory_limit()
    assert limit is None or limit > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_trim_runs_on_glibc() -> None:
    if not memory.malloc_trim_available():
        pytest.skip("no glibc malloc_trim")
    assert memory.malloc_trim() in (True, False)


def test_malloc_trim_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim_func", lambda: None)
    assert memory.malloc_trim_available() is False
    assert memory.malloc_trim() is False


def test_tightest_limit() -> None:
    assert memory.tightest_limit(None, 0) is None
    assert memory.tightest_limit() is None
    assert memory.tightest_limit(5, None, 3, 0) == 3


def test_ru_maxrss_is_the_peak_not_the_current() -> None:
    peak = memory.ru_maxrss_bytes()
    assert peak is not None and peak >= memory.current_rss() * 0.9
