import xml.etree.ElementTree as ET

import pytest

from plt import memchart, memsamples

SVG = "{http://www.w3.org/2000/svg}"


def add_run(jobdir, reason, seconds, rss, concurrency, budget=950.0, profile="1gb"):
    n = len(rss)
    memsamples.append_run(
        jobdir,
        {
            "job": jobdir.name,
            "profile": profile,
            "reason": reason,
            "t": [seconds * i / (n - 1) for i in range(n)],
            "rss_mb": rss,
            "budget_mb": [budget] * n,
            "concurrency": concurrency,
        },
    )


@pytest.fixture
def job(tmp_path):
    jobdir = tmp_path / "product-2026-11-27"
    jobdir.mkdir()
    add_run(jobdir, "shutdown", 40.0, [100, 300, 420, 380, 200], [64, 64, 32, 32, 32])
    add_run(jobdir, "finished", 67.0, [110, 250, 500, 450, 120], [64, 32, 16, None, 16])
    return jobdir


def svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root, [t.text or "" for t in root.iter(f"{SVG}text")]


def test_a_job_with_two_runs_gets_one_chart_with_both_runs_marked(job):
    path = memchart.draw(job)
    assert path == job / "memory.svg"
    assert path.stat().st_size > 0
    root, texts = svg_texts(path)
    title = next(t for t in texts if t.startswith("Memory of job"))
    assert title == "Memory of job product-2026-11-27 (profile 1gb), 2 runs"
    assert "run 1 (shutdown)" in texts
    assert "run 2 (finished)" in texts
    # The second run's start is a marked line; the first run starts at 0.
    gids = {el.get("id") for el in root.iter()}
    assert "run-2" in gids
    assert "run-1" not in gids
    assert "crawl time (s), runs laid end to end" in texts
    assert "concurrency (requests in flight)" in texts


def test_axes_fit_the_job_and_concurrency_has_its_own_axis(job):
    fig = memchart.figure(memsamples.read_runs(job), job.name)
    memory_ax, concurrency_ax = fig.axes
    # 40 s + 67 s of crawl time, and not a second more.
    assert memory_ax.get_xlim() == (0.0, 107.0)
    assert memory_ax.get_ylabel() == "memory (MiB)"
    assert concurrency_ax.get_ylabel() == "concurrency (requests in flight)"
    assert concurrency_ax.get_ylim()[1] > 64
    # No horizontal gridline a concurrency step could sit on.
    assert not any(line.get_visible() for line in memory_ax.get_ygridlines())
    assert not any(line.get_visible() for line in concurrency_ax.get_ygridlines())
    assert memory_ax.get_ylim()[1] > 950  # the budget is on the chart


def test_long_jobs_read_in_minutes_or_hours():
    assert memchart.time_unit(107) == (1.0, "s")
    assert memchart.time_unit(600) == (60.0, "min")
    assert memchart.time_unit(5 * 3600) == (3600.0, "h")


def test_runs_with_other_profiles_are_all_named(tmp_path):
    jobdir = tmp_path / "j"
    jobdir.mkdir()
    add_run(jobdir, "memusage_exceeded", 10.0, [100, 200], [8, 8], profile="256mb")
    add_run(jobdir, "finished", 10.0, [100, 200], [8, 8], profile="1gb")
    _, texts = svg_texts(memchart.draw(jobdir))
    assert "Memory of job j (profile 256mb, 1gb), 2 runs" in texts


def test_png_output(job, tmp_path):
    out = memchart.draw(job, tmp_path / "chart.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_command_line(job, tmp_path, capsys):
    assert memchart.main([str(job)]) == 0
    assert capsys.readouterr().out.strip() == str(job / "memory.svg")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert memchart.main([str(empty)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"plt.memchart: cannot read the memory samples of {empty}")
    assert "\n" not in err


def test_a_job_with_no_whole_run_is_an_error(tmp_path):
    (tmp_path / memsamples.SAMPLES_FILE).write_text('{"run": 1, "t": [0, 1]')  # torn
    with pytest.raises(memchart.ChartError, match="no memory samples"):
        memchart.draw(tmp_path)


def test_the_top_concurrency_sits_between_memory_ticks(tmp_path):
    # The case that read as a threshold: 64 requests level with 800 MiB.
    jobdir = tmp_path / "j"
    jobdir.mkdir()
    add_run(jobdir, "finished", 20.0, [90, 110, 120], [64, 64, 64])
    fig = memchart.figure(memsamples.read_runs(jobdir), "j")
    memory_ax, concurrency_ax = fig.axes
    top = memory_ax.get_ylim()[1]
    ticks = [t / top for t in memory_ax.get_yticks() if 0 <= t <= top]
    height = 64 / concurrency_ax.get_ylim()[1]
    gap = min(abs(height - t) for t in ticks)
    assert gap == pytest.approx((ticks[1] - ticks[0]) / 2)


def test_concurrency_height():
    assert memchart.concurrency_height([0, 200, 400, 600, 800, 1000], 1000) == 0.7
    assert memchart.concurrency_height([0, 500, 1000], 1000) == 0.75
    assert memchart.concurrency_height([], 1000) == 0.7
