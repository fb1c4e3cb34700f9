from plt.memtext import fmt_bytes, render_text, status_line


def test_fmt_bytes():
    assert fmt_bytes(None) == "?"
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(4.5 * 1024 * 1024) == "4.5 MiB"
    assert fmt_bytes(3 * 1024**4) == "3,072.0 GiB"  # GiB is the largest unit


def snapshot(**changes):
    snap = {
        "rss_mb": 100.0,
        "peak_rss_mb": 100.0,
        "budget_mb": None,
        "concurrency": 4,
        "engine": {},
        "pending_items": None,
        "bytes": {},
    }
    return {**snap, **changes}


def test_status_line_without_engine_or_extras():
    assert status_line(snapshot()) == "RSS 100 MiB (peak 100, budget none); concurrency 4"


def test_status_line_scheduler_without_a_length():
    line = status_line(snapshot(engine={"scheduler_queues": {"disk": 1204}}))
    assert line.endswith("; scheduler ? (disk 1,204)")


def test_report_text():
    report = {
        **snapshot(budget_mb=950, pending_items=0, bytes={"wire": 2048}),
        "reason": "finished",
        "elapsed_s": 61.2,
        "ru_maxrss_mb": None,
        "engine": {"downloader_active": 0},
        "engine_max": {"downloader_active": 16, "scheduler": 12},
        "live_objects": [
            {"type": "HtmlResponse", "count": 2, "oldest_age_s": 3.0, "body_bytes": 5000}
        ],
        "samples": {"interval_s": 4.0, "count": 31},
    }
    text = render_text(report)
    assert text.startswith("Memory report (close reason: finished, 61 s)\n")
    for line in (
        "peak RSS kernel  ? MiB (ru_maxrss)",
        "budget           950 MiB",
        "pending items    0",
        "  wire             2.0 KiB",
        "  downloader_active               0 / 16",
        "  scheduler                       - / 12",
        "31 RSS samples, one per 4 s",
    ):
        assert line in text.splitlines()
    assert "HtmlResponse" in text and "4.9 KiB" in text
