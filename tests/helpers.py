"""Small helpers shared by test modules."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterable
from typing import Any

from scrapy.http import Response


def collect(agen: AsyncIterator[Any]) -> list[Any]:
    """Everything an async generator (a callback, an errback) yields."""

    async def drain() -> list[Any]:
        return [x async for x in agen]

    return asyncio.run(drain())


def spider_output(mw: Any, response: Response, outputs: Iterable[Any]) -> list[Any]:
    """What a spider middleware's process_spider_output lets through of ``outputs``."""

    async def result() -> AsyncIterator[Any]:
        for obj in outputs:
            yield obj

    return collect(mw.process_spider_output(response, result()))


def terminate(proc: subprocess.Popen[Any] | None, timeout: float) -> None:
    """SIGTERM a server, SIGKILL it if it has not exited after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
