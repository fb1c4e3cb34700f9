"""Run the demo shop in a child process, for tests, benchmarks and local crawls.

The shop runs as ``python -m plt.shop`` in its own process so that its memory
and CPU never count against the crawler's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import plt
from plt.shop.catalog import ShopConfig
from plt.shop.cli import READY_PREFIX, config_to_argv

logger = logging.getLogger(__name__)

_PROJECT_ROOT = str(Path(plt.__file__).resolve().parent.parent)
# Loopback only: never let an environment proxy see the shop's traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, even by SIGKILL.

    Otherwise a crawler killed by the OOM killer leaves its demo shop holding
    the port the resumed job wants back.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(
        pr_set_pdeathsig, signal.SIGTERM
    )


class ShopProcessError(RuntimeError):
    """The shop process did not start, or the ground-truth run failed."""


class ShopProcess:
    """A demo shop in a subprocess; use as a context manager or call start()/stop().

    ``ShopProcess(ShopConfig(products=200))`` or ``ShopProcess(products=200)``:
    keyword arguments override fields of ``config`` (default ShopConfig()). ``port``
    is the requested port until start() and the bound one after it. With
    ``hits_file``, a restarted shop goes on with the faults where the last one
    stopped (a wall lifts after its hits, counted across restarts).
    """

    def __init__(
        self,
        config: ShopConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        no_faults: bool = False,
        access_log: bool = False,
        log_path: str | os.PathLike[str] | None = None,
        hits_file: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        **overrides: Any,
    ) -> None:
        config = dataclasses.replace(config or ShopConfig(), **overrides)
        self.config = config.without_faults() if no_faults else config
        self.host = host
        self.port = port
        self.access_log = access_log
        self.log_path = log_path
        self.hits_file = hits_file
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # Command line

    def _base_argv(self) -> list[str]:
        return [sys.executable, "-m", "plt.shop", *config_to_argv(self.config)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [_PROJECT_ROOT, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def argv(self) -> list[str]:
        """The child's command line."""
        argv = [*self._base_argv(), f"--host={self.host}", f"--port={self.port}"]
        if self.hits_file is not None:
            argv.append(f"--hits-file={self.hits_file}")
        return [*argv, "--access-log"] if self.access_log else argv

    # Lifecycle

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> ShopProcess:
        if self._proc is not None:
            raise ShopProcessError("the shop process is already started")
        # stderr goes to a file: a pipe nobody reads would block a chatty child.
        if self.log_path is not None:
            self._stderr = open(self.log_path, "w+b")  # noqa: SIM115
        else:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            self.argv(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self._env(),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        try:
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise
        # The bound port: a restart then keeps the same URL.
        self.port = int(self.url.rsplit(":", 1)[1])
        logger.info("Demo shop (pid %d) listening on %s", self._proc.pid, self.url)
        return self

    def _read_url(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ShopProcessError(
                        f"demo shop did not start within {self.startup_timeout:g} s"
                        + self._stderr_tail()
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self._proc.wait(timeout=5)
                    raise ShopProcessError(
                        f"demo shop exited with code {code} before listening" + self._stderr_tail()
                    )
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
        if not line.startswith(READY_PREFIX):
            raise ShopProcessError(f"unexpected first line from the demo shop: {line!r}")
        return line[len(READY_PREFIX) :]

    def _stderr_tail(self, limit: int = 8000) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")[-limit:]
        except OSError:
            return ""
        return f"; its stderr:\n{text}" if text else "; its stderr is empty"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after stop_timeout; returns the exit code."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("Demo shop (pid %d) ignored SIGTERM; killing it", proc.pid)
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code

    def __enter__(self) -> ShopProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Helpers

    def stats(self, timeout: float = 10.0) -> dict[str, int]:
        """The shop's request counters (GET /_shop/stats)."""
        if self.url is None:
            raise ShopProcessError("the shop process is not running")
        with _OPENER.open(f"{self.url}/_shop/stats", timeout=timeout) as response:
            return json.loads(response.read())

    def write_ground_truth(self, path: str | os.PathLike[str], base_url: str | None = None) -> Path:
        """Write the items a correct crawl of this shop exports, as JSONL sorted by id."""
        return self._write("--write-ground-truth", path, base_url)

    def write_expected_failures(
        self, path: str | os.PathLike[str], base_url: str | None = None
    ) -> Path:
        """Write the products a correct crawl must give up ({product_id, url, reason} lines)."""
        return self._write("--write-expected-failures", path, base_url)

    def _write(self, option: str, path: str | os.PathLike[str], base_url: str | None) -> Path:
        base_url = base_url or self.url
        if base_url is None:
            raise ShopProcessError("start the shop or pass base_url")
        argv = [*self._base_argv(), f"{option}={path}", f"--base-url={base_url}"]
        done = subprocess.run(argv, env=self._env(), capture_output=True, check=False)
        if done.returncode != 0:
            raise ShopProcessError(
                f"{option} run exited with code {done.returncode}: "
                + done.stderr.decode(errors="replace")[-8000:]
            )
        return Path(path)
