"""A redis-server for the benchmarks, and what it says about the commands it ran.

``RedisProcess`` runs redis-server on a free loopback port, with or without
an append-only file, and can shut it down (SHUTDOWN from a plain client) and
start it again on the same port. ``Probe`` is the benchmark's own client: it
counts what it sends, so that its commands are taken out of
``INFO commandstats``. ``CommandMonitor`` reads ``MONITOR`` and counts the
commands clients sent apart from those that scripts ran: commandstats counts
both, so an EVALSHA shows there as itself plus every command of its script.
(The module is named ``redisproc`` so that it never shadows the ``redis``
package when ``benchmarks/`` is the first entry of ``sys.path``.)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

STARTUP_TIMEOUT = 10.0
# MONITOR names a container command by its first word; INFO commandstats by both.
_CONTAINERS = {b"client", b"config", b"script", b"memory", b"object", b"command", b"function"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """redis-server on 127.0.0.1; ``persistent`` = AOF with an fsync per write."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--dir", str(self.workdir)]
        if self.persistent:
            return [*argv, "--appendonly", "yes", "--appendfsync", "always"]
        return [*argv, "--appendonly", "no"]

    def start(self) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            if self._launch():
                return self
            self.stop()
        raise SystemExit(f"redis-server did not start; see {self.workdir}/redis-*.log")

    def shutdown(self) -> None:
        """SHUTDOWN from a plain client (the AOF is written first), then wait for the exit."""
        with contextlib.suppress(RedisConnectionError):  # the server closes as it goes
            Redis.from_url(self.url).shutdown()
        if self.proc is not None:
            self.proc.wait(timeout=60)

    def restart(self) -> None:
        """Start it again on the same port (with its data back from the AOF, if any)."""
        if not self._launch():
            raise SystemExit(f"redis-server did not restart on port {self.port}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _launch(self) -> bool:
        with (self.workdir / f"redis-{self.port}.log").open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        try:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    return bool(client.ping())
                except RedisConnectionError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()


class Probe:
    """The benchmark's own connection, counting its commands as commandstats names them."""

    def __init__(self, url: str) -> None:
        # One connection, RESP2 and no CLIENT SETINFO: it sends only what it is asked to.
        self.client = Redis.from_url(
            url, single_connection_client=True, protocol=2, driver_info=None
        )
        self.sent: Counter[str] = Counter()
        self.address = str(self._call("client|info", self.client.client_info)["addr"])

    def _call(self, name: str, fn: Any, *args: Any) -> Any:
        result = fn(*args)
        self.sent[name] += 1
        return result

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT; commandstats then holds the reset itself."""
        self.client.config_resetstat()
        self.sent = Counter({"config|resetstat": 1})

    def scard(self, key: str) -> int:
        return int(self._call("scard", self.client.scard, key))

    def info(self, section: str) -> dict[str, Any]:
        return dict(self._call("info", self.client.info, section))

    def echo(self, text: str) -> None:
        self._call("echo", self.client.echo, text)

    def commandstats(self, own: Counter[str] | None = None) -> Counter[str]:
        """Calls per command since the reset or start, without this probe's and ``own``."""
        sent = self.sent + (own or Counter())  # an INFO is not in its own answer
        stats = self.info("commandstats")
        calls = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})
        calls.subtract(sent)
        return +calls  # drops what went to zero

    def memory_usage(self, keys: list[str]) -> dict[str, int]:
        """MEMORY USAGE of each key that exists, every element counted (SAMPLES 0)."""
        sizes = {}
        for key in keys:
            size = self._call("memory|usage", self.client.memory_usage, key, 0)
            if size is not None:
                sizes[key] = int(size)
        return sizes

    def close(self) -> None:
        self.client.close()


class CommandMonitor:
    """MONITOR on a raw socket: commands by sender (an address, or "lua") and name.

    Lines are counted in a thread as they come. ``detach`` sends a marker
    through the probe and reads up to it, so every command before it is
    counted. MONITOR leaves out a few admin commands (CONFIG, AUTH, ...).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.counts: Counter[tuple[str, str]] = Counter()
        self.attaches = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._marker = b""

    def attach(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.sendall(b"MONITOR\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(64)
            if not chunk:
                raise ConnectionError("redis-server closed the MONITOR connection")
            reply += chunk
        if not reply.startswith(b"+OK"):
            raise ConnectionError(f"MONITOR refused: {reply!r}")
        sock.settimeout(None)
        self._sock, self.attaches = sock, self.attaches + 1
        self._marker = f"plt-bench-{uuid.uuid4().hex}".encode()
        self._thread = threading.Thread(target=self._read, args=(sock,), daemon=True)
        self._thread.start()

    def detach(self, probe: Probe, timeout: float = 60.0) -> bool:
        """Read up to a marker sent now; False if it did not come (lines were lost)."""
        if self._thread is None or self._sock is None:
            return False
        probe.echo(self._marker.decode())
        self._thread.join(timeout)
        complete = not self._thread.is_alive()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)
        self._sock = self._thread = None
        return complete

    def _read(self, sock: socket.socket) -> None:
        counts, marker, rest = self.counts, self._marker, b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            lines = (rest + chunk).split(b"\r\n")
            rest = lines.pop()
            for line in lines:
                head, sep, command = line.partition(b'] "')
                if not sep:
                    continue
                if marker in command:
                    return
                sender = head[head.find(b"[") + 1 :].partition(b" ")[2]
                counts[(sender.decode(), _command_name(command))] += 1

    def by_sender(self, exclude: set[str]) -> tuple[Counter[str], Counter[str]]:
        """(commands clients sent, commands scripts ran), without the ``exclude`` senders."""
        sent: Counter[str] = Counter()
        scripted: Counter[str] = Counter()
        for (sender, name), n in self.counts.items():
            if sender == "lua":
                scripted[name] += n
            elif sender not in exclude:
                sent[name] += n
        return sent, scripted


def _command_name(command: bytes) -> str:
    """``EVALSHA" "ab12" ...`` -> ``evalsha``; ``CONFIG" "GET" ...`` -> ``config|get``."""
    name, _, rest = command.partition(b'"')
    name = name.lower()
    if name in _CONTAINERS and rest.startswith(b' "'):
        sub = rest[2:].partition(b'"')[0].lower()
        return f"{name.decode()}|{sub.decode()}"
    return name.decode(errors="replace")
