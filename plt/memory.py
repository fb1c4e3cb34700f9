"""Process memory helpers: current and peak RSS, the container's memory limit, malloc_trim.

Kept free of Scrapy imports so that benchmarks, extensions and tests can share them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is a runtime requirement
    psutil = None

MIB = 1024 * 1024

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")

# cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712
# on 4 KiB pages); anything this large cannot be a real limit.
_V1_UNLIMITED = 1 << 60


def psutil_available() -> bool:
    return psutil is not None


@cache
def _process() -> psutil.Process:
    # One Process object: psutil caches the pid lookup and /proc handles on it.
    return psutil.Process()


def current_rss() -> int:
    """Resident set size of this process now, in bytes.

    Unlike ``resource.getrusage().ru_maxrss`` (the peak, which Scrapy's
    MemoryUsage extension reads) this comes down when memory is given back.
    """
    if psutil is None:
        raise RuntimeError("psutil is required to read the current RSS")
    return _process().memory_info().rss


def ru_maxrss_bytes() -> int | None:
    """Kernel-reported peak RSS of this process (catches spikes between samples)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-unix
        return None
    size = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return size if sys.platform == "darwin" else size * 1024  # KB on Linux


def _read_limit(path: Path) -> int | None:
    """One cgroup limit file: bytes, or None for unlimited, missing or unreadable."""
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    if value <= 0 or value >= _V1_UNLIMITED:
        return None
    return value


def _own_cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup path in the v2 hierarchy and in the v1 memory one."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier_id, controllers, path = parts
        if hier_id == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _chain(base: Path, cgroup_path: str | None) -> list[Path]:
    """``base`` and every directory from it down to the process's own cgroup.

    Inside a container the cgroup namespace makes the root the container's
    cgroup; on a host the process sits deeper, and every ancestor's limit
    applies to it too.
    """
    dirs = [base]
    if cgroup_path:
        current = base
        for part in cgroup_path.strip("/").split("/"):
            if part and part not in (".", ".."):
                current = current / part
                dirs.append(current)
    return dirs


def cgroup_memory_limit(
    root: str | Path = DEFAULT_CGROUP_ROOT, proc_cgroup: str | Path = PROC_SELF_CGROUP
) -> int | None:
    """The tightest cgroup memory limit that applies to this process, in bytes.

    Reads cgroup v2 ``memory.max`` ("max" means none) and cgroup v1
    ``memory/memory.limit_in_bytes`` (a huge number means none) at ``root`` and
    along the process's own cgroup path. Returns None when no limit is set or
    the files are not there (not Linux, no cgroup mount).
    """
    root = Path(root)
    v2_path, v1_path = _own_cgroup_paths(Path(proc_cgroup))
    candidates = [d / "memory.max" for d in _chain(root, v2_path)]
    candidates += [d / "memory.limit_in_bytes" for d in _chain(root / "memory", v1_path)]
    return tightest_limit(*(_read_limit(path) for path in candidates))


def tightest_limit(*limits: int | None) -> int | None:
    """The smallest of the positive limits given (None and 0 mean "no limit")."""
    real = [limit for limit in limits if limit]
    return min(real) if real else None


@cache
def _malloc_trim_func() -> ctypes._CFuncPtr | None:
    # malloc_trim is a glibc extension: musl and macOS do not have it.
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        func = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_size_t]
    func.restype = ctypes.c_int
    return func


def malloc_trim_available() -> bool:
    return _malloc_trim_func() is not None


def malloc_trim(pad: int = 0) -> bool:
    """Ask glibc to hand free heap memory back to the OS.

    CPython frees large objects (response bodies, lxml trees) with free(), but
    glibc keeps the pages in its arenas for reuse, so RSS stays high after a
    burst. Returns True if glibc released memory, False if it had none to
    release or the call is unavailable.
    """
    func = _malloc_trim_func()
    if func is None:
        return False
    return bool(func(pad))
