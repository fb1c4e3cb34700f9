import asyncio
import json
import logging

from plt import memsamples


def record(reason="finished", n=3):
    return {
        "reason": reason,
        "t": [float(i) for i in range(n)],
        "rss_mb": [100.0 + i for i in range(n)],
        "budget_mb": [950] * n,
        "concurrency": [16, None, 8][:n],
    }


def test_runs_are_numbered_in_the_order_they_are_appended(tmp_path):
    assert memsamples.append_run(tmp_path, record("shutdown")) == 1
    assert memsamples.append_run(tmp_path, record("finished")) == 2
    runs = memsamples.read_runs(tmp_path)
    assert [(r["run"], r["reason"]) for r in runs] == [(1, "shutdown"), (2, "finished")]
    assert runs[0]["concurrency"] == [16, None, 8]


def test_a_torn_line_is_skipped_and_does_not_swallow_the_next_run(tmp_path, caplog):
    memsamples.append_run(tmp_path, record("shutdown"))
    path = tmp_path / memsamples.SAMPLES_FILE
    with path.open("a") as f:
        f.write('{"run": 2, "t": [0.0, 1')  # killed mid-write
    assert memsamples.append_run(tmp_path, record("finished")) == 3
    with caplog.at_level(logging.WARNING, logger=memsamples.__name__):
        runs = memsamples.read_runs(tmp_path)
    assert [r["run"] for r in runs] == [1, 3]
    assert caplog.messages == [f"{path}: 1 damaged or torn lines skipped"]


def test_lines_that_are_not_samples_are_skipped(tmp_path):
    bad = [
        "not json",
        json.dumps({"run": 1, **record(), "rss_mb": [1, 2]}),  # columns of other lengths
        json.dumps({"run": 1, **record(), "t": [0, "1", 2]}),  # not a number
        json.dumps({"run": "1", **record()}),
        json.dumps([1, 2, 3]),
        json.dumps({"run": 1, **record(), "rss_mb": [1, None, 2]}),  # RSS is always known
    ]
    (tmp_path / memsamples.SAMPLES_FILE).write_text("\n".join(bad) + "\n")
    memsamples.append_run(tmp_path, record())
    assert [r["run"] for r in memsamples.read_runs(tmp_path)] == [len(bad) + 1]


def test_reading_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(memsamples, "MAX_RUNS", 3)
    monkeypatch.setattr(memsamples, "MAX_LINE_BYTES", 400)
    for _ in range(5):
        memsamples.append_run(tmp_path, record())
    memsamples.append_run(tmp_path, record(n=3) | {"pad": "x" * 500})
    memsamples.append_run(tmp_path, record())
    assert [r["run"] for r in memsamples.read_runs(tmp_path)] == [4, 5, 7]


def test_draw_in_child_reports_why_it_failed_in_one_line(tmp_path):
    error = asyncio.run(memsamples.draw_in_child(tmp_path, timeout=120))
    assert error.startswith("plt.memchart: cannot read the memory samples of")
    assert not (tmp_path / memsamples.CHART_FILE).exists()


def test_draw_in_child_without_an_event_loop(tmp_path):
    memsamples.append_run(tmp_path, record())
    coro = memsamples.draw_in_child(tmp_path, timeout=120)
    try:
        coro.send(None)  # driven by hand, as a non-asyncio reactor would
    except StopIteration as done:
        assert done.value is None
    assert (tmp_path / memsamples.CHART_FILE).stat().st_size > 0
    assert memsamples.chart_command(tmp_path) == f"python -m plt.memchart {tmp_path}"
