"""A bounded RSS time series: as long as the crawl, never longer than its limit.

When the series is full it is halved, keeping the higher reading of each pair,
and from then on only every other reading is kept (the highest since the last
kept one), so a long crawl's series stays the same size and keeps its peaks.
Nothing here imports Scrapy.
"""

from __future__ import annotations

from typing import NamedTuple


class Sample(NamedTuple):
    t: float  # seconds since the spider opened
    rss_mb: float
    concurrency: int | None
    budget_mb: float | None


def decimate(samples: list[Sample]) -> list[Sample]:
    """Halve a series, keeping the higher-RSS sample of each pair so peaks survive."""
    out = [
        max(a, b, key=lambda s: s.rss_mb) for a, b in zip(samples[::2], samples[1::2], strict=False)
    ]
    if len(samples) % 2:
        out.append(samples[-1])
    return out


class SampleSeries:
    """At most ``max_samples`` samples, whatever the number of readings added."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max(2, max_samples)
        self.samples: list[Sample] = []
        self.stride = 1  # readings per kept sample
        self._tick = 0
        self._pending: Sample | None = None

    def add(self, s: Sample, force: bool = False) -> None:
        """One reading; with ``force`` (the closing one) it is kept whatever the stride."""
        # Between kept samples, remember the highest reading so spikes are not lost.
        if self._pending is None or s.rss_mb > self._pending.rss_mb:
            self._pending = s
        self._tick += 1
        if force:
            if self._pending is not s:
                self._keep(self._pending)
            self._keep(s)
        elif self._tick % self.stride == 0:
            self._keep(self._pending)

    def _keep(self, s: Sample) -> None:
        self.samples.append(s)
        self._pending, self._tick = None, 0
        if len(self.samples) >= self.max_samples:
            # Halve the series and the sampling rate so memory stays flat on long crawls.
            self.samples = decimate(self.samples)
            self.stride *= 2

    def columns(self) -> dict[str, list[float | int | None]]:
        """One list per field of Sample, in order: the report's and the samples file's."""
        return {name: [getattr(x, name) for x in self.samples] for name in Sample._fields}
