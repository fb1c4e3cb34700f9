"""The benchmark scripts' pieces, and one tiny end-to-end run of both crawlers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import distributed, encodings, profiles, revisions, run
from benchmarks.common import (
    ROOT,
    LineCounter,
    effective_concurrency,
    log_stats,
    parse_elapsed,
    parse_time_v,
    render_table,
)
from benchmarks.redisproc import _command_name

TIME_V = """\
\tCommand being timed: "python -m scrapy crawl product -s SHOP_URL=http://127.0.0.1:1"
\tUser time (seconds): 10.82
\tSystem time (seconds): 0.74
\tPercent of CPU this job got: 94%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:12.29
\tAverage shared text size (kbytes): 0
\tMaximum resident set size (kbytes): 100892
\tMajor (requiring I/O) page faults: 0
\tFile system outputs: 439040
\tPage size (bytes): 4096
\tExit status: 0
"""


def test_parse_time_v():
    t = parse_time_v(TIME_V)
    assert (t.user_s, t.sys_s, t.wall_s) == (10.82, 0.74, 12.29)
    assert t.cpu_s == pytest.approx(11.56)
    assert t.max_rss_kib == 100892
    assert t.max_rss_mib == pytest.approx(98.53, abs=0.01)
    assert t.exit_status == 0 and t.signal is None


def test_parse_time_v_killed_and_long():
    text = "Command terminated by signal 9\n" + TIME_V.replace("0:12.29", "1:02:03").replace(
        "Exit status: 0", "Exit status: 0"
    )
    t = parse_time_v(text)
    assert t.signal == 9
    assert t.wall_s == 3723


def test_parse_elapsed():
    assert parse_elapsed("2:03.45") == pytest.approx(123.45)
    assert parse_elapsed("1:00:00") == 3600


def test_parse_time_v_rejects_other_text():
    with pytest.raises(ValueError, match="time -v"):
        parse_time_v("Traceback (most recent call last):\n")


def test_run_arguments():
    args = run.parse_args([])
    assert (args.products, args.profile, args.repeat, args.concurrency) == (2000, "1gb", 1, 16)
    assert args.only is None and not args.keep and args.json is None
    args = run.parse_args(["--products", "20103", "--repeat", "3", "--only", "plt"])
    assert (args.products, args.repeat, args.only) == (20103, 3, "plt")
    for bad in (["--repeat", "0"], ["--only", "both"], ["--products", "0"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)


def test_runs_alternate():
    assert run.schedule(2) == [("baseline", 1), ("plt", 1), ("baseline", 2), ("plt", 2)]
    assert run.schedule(2, "plt") == [("plt", 1), ("plt", 2)]


def fake_run(kind: str, items: int, wall: float, cpu: float, rss: float, missing: int) -> dict:
    checks = {"missing": missing, "extra": 0, "repeated": 0, "field_differences": 0}
    return {
        "kind": kind,
        "items": items,
        "wall_s": wall,
        "cpu_s": cpu,
        "max_rss_mib": rss,
        "items_per_cpu_s": items / cpu,
        "verify": checks,
        "stats": {"dupefilter/filtered": 9} if kind == "baseline" else {},
    }


def test_medians_ratios_and_table():
    baseline = [fake_run("baseline", 90, w, 40, 600, 10) for w in (50, 70, 60)]
    plt = [fake_run("plt", 100, w, 10, 100, 0) for w in (20, 10, 30)]
    summary = {"baseline": run.medians(baseline), "plt": run.medians(plt)}
    assert summary["baseline"]["wall_s"] == 60 and summary["plt"]["wall_s"] == 20
    ratios = run.ratios(summary)
    assert ratios["cpu_s"] == 0.25
    assert ratios["items_per_cpu_s"] == pytest.approx((100 / 10) / (90 / 40))
    table = run.figures_table(summary)
    assert "PLT/baseline" in table
    assert "0.25x" in table and "0.17x" in table  # CPU s, peak RSS
    checks = run.checks_table(summary, expected=100)
    assert "missing" in checks and "requests dropped as duplicates" in checks
    lines = run.targets(summary)
    assert "target <= 128 MiB: met" in lines[0]
    assert "4.44x" in lines[1] and "met" in lines[1]


def test_table_without_baseline():
    summary = {"plt": run.medians([fake_run("plt", 100, 10, 10, 200, 0)])}
    assert run.ratios(summary) == {}
    assert "PLT/baseline" not in run.figures_table(summary)
    assert "missed by 72.0 MiB" in run.targets(summary)[0]


def test_render_table_aligns():
    text = render_table(["", "a", "bb"], [["row", 1, "22222"]])
    header, rule, row = text.splitlines()
    assert len(header) == len(rule) == len(row)


def test_log_stats_and_overridden_settings(tmp_path):
    log = tmp_path / "crawl.log"
    log.write_text(
        "2026-01-01 [scrapy.crawler] INFO: Overridden settings:\n"
        "{'BOT_NAME': 'old_product',\n 'CONCURRENT_REQUESTS': '64',\n 'LOG_LEVEL': 'INFO'}\n"
        "2026-01-01 [scrapy.statscollectors] INFO: Dumping Scrapy stats:\n"
        "{'dupefilter/filtered': 190,\n 'elapsed_time_seconds': 58.5,\n"
        " 'finish_reason': 'finished',\n"
        " 'start_time': datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}\n"
    )
    stats = log_stats(log)
    assert stats == {
        "dupefilter/filtered": 190,
        "elapsed_time_seconds": 58.5,
        "finish_reason": "finished",
    }
    assert effective_concurrency(log) == 64
    log.write_text("no settings logged\n")
    assert effective_concurrency(log) == 16


def test_line_counter_reads_only_new_bytes(tmp_path):
    path = tmp_path / "items.jsonl"
    counter = LineCounter(path)
    assert counter.count() == 0
    path.write_text("{}\n{}\n")
    assert counter.count() == 2
    with path.open("a") as f:
        f.write("{}\n")
    assert counter.count() == 3


def test_profile_cases():
    args = profiles.parse_args(["--profiles", "256mb,1gb"])
    todo = profiles.cases(args)
    assert [c.name for c in todo] == [
        "profile 256mb",
        "profile 1gb",
        "pressure, governor on",
        "pressure, governor off",
    ]
    # Each profile at its ceiling, given explicitly: a profile itself only caps.
    assert todo[0].settings == [
        "PROFILE=256mb",
        "CONCURRENT_REQUESTS=16",
        "CONCURRENT_REQUESTS_PER_DOMAIN=16",
    ]
    assert todo[1].concurrency == 64
    on, off = todo[2:]
    assert "MEMUSAGE_LIMIT_MB=128" in on.settings and "CONCURRENT_REQUESTS=64" in on.settings
    assert "PLT_MEMORY_BUDGET_MB=128" in on.settings
    assert off.settings == [*on.settings, "PLT_GOVERNOR_ENABLED=0"]
    assert (on.expect, off.expect) == ("finished", "memusage_exceeded")
    assert profiles.cases(profiles.parse_args(["--pressure-only"]))[0] == on
    with pytest.raises(SystemExit):
        profiles.parse_args(["--pressure-only", "--no-pressure"])


def test_both_crawlers_end_to_end(tmp_path, capsys):
    """100 products: both crawlers run, are measured and checked against the ground truth."""
    out = tmp_path / "bench.json"
    argv = ["--products", "100", "--workdir", str(tmp_path), "--keep", "--json", str(out)]
    assert run.main(argv) == 0
    printed = capsys.readouterr().out
    assert "PLT/baseline" in printed and "items / CPU s" in printed
    result = json.loads(out.read_text())
    by_kind = {r["kind"]: r for r in result["runs"]}
    assert set(by_kind) == {"baseline", "plt"}
    expected = result["expected_items"]
    assert by_kind["plt"]["verify"]["exact"], by_kind["plt"]["verify"]
    assert by_kind["plt"]["items"] == expected
    baseline = by_kind["baseline"]
    assert baseline["finish_reason"] == "finished"
    # The baseline loses products (no active colour), but never repeats or invents one.
    assert baseline["verify"]["extra"] == baseline["verify"]["repeated"] == 0
    assert 0 < baseline["items"] <= expected
    for r in result["runs"]:
        assert r["max_rss_mib"] > 0 and r["cpu_s"] > 0
    # The baseline ran on its own settings, none of PLT's components.
    log = Path(baseline["measured"]["log_path"]).read_text()
    assert "old_spider.StockJsonPipeline" in log
    assert "plt." not in log.split("Spider opened")[0]


def test_encodings_arguments_and_settings():
    args = encodings.parse_args(["--encodings", "br,zstd", "--schemes", "https"])
    assert (args.encodings, args.schemes) == (["br", "zstd"], ["https"])
    settings = encodings.crawl_settings(args, "br", stop=False)
    assert "PLT_HEAD_STOP_TRANSFER=False" in settings
    assert "CONCURRENT_REQUESTS=16" in settings and "CONCURRENT_REQUESTS_PER_DOMAIN=16" in settings
    (headers,) = [s for s in settings if s.startswith("DEFAULT_REQUEST_HEADERS=")]
    assert json.loads(headers.partition("=")[2])["Accept-Encoding"] == "br"
    for bad in (["--encodings", "lzma"], ["--schemes", "ftp"], ["--products", "0"]):
        with pytest.raises(SystemExit):
            encodings.parse_args(bad)


def test_encodings_end_to_end(tmp_path, capsys):
    """30 products over HTTPS in zstd, stopped and whole: measured, exact, and in the table."""
    out = tmp_path / "enc.json"
    argv = ["--products", "30", "--encodings", "zstd", "--schemes", "https", "--latency-ms", "0"]
    argv += ["--bandwidth-mbit", "0", "--workdir", str(tmp_path), "--json", str(out)]
    assert encodings.main(argv) == 0
    printed = capsys.readouterr().out
    assert "https-zstd-stop" in printed and "https-zstd-whole" in printed
    runs = {r["case"]: r for r in json.loads(out.read_text())}
    assert all(r["verify"]["exact"] and r["returncode"] == 0 for r in runs.values())
    assert runs["https-zstd-stop"]["stats"]["plt/head/stopped"] > 0
    assert "plt/head/stopped" not in runs["https-zstd-whole"]["stats"]


def test_revisions_arguments():
    args = revisions.parse_args(["--before", "abc", "--after", "main"])
    assert (args.before, args.after, args.products, args.repeat) == ("abc", "main", 2000, 1)
    assert revisions.crawl_settings(args) == [
        "PROFILE=1gb",
        "CONCURRENT_REQUESTS=16",
        "CONCURRENT_REQUESTS_PER_DOMAIN=16",
    ]
    args = revisions.parse_args(["--before", "a", "--after", "b", "--products", "5000"])
    assert args.products == 5000 and args.json is None and not args.keep
    for bad in (["--before", "a"], ["--before", "a", "--after", "b", "--repeat", "0"]):
        with pytest.raises(SystemExit):
            revisions.parse_args(bad)
    assert revisions.schedule(2) == [("before", 1), ("after", 1), ("before", 2), ("after", 2)]


def test_revisions_medians_ratios_and_failures():
    def crawl(name: str, cpu: float, code: int = 0, exact: bool = True) -> dict:
        return {
            "revision": name,
            "round": 1,
            "returncode": code,
            "exact": exact,
            "items": 100,
            "wall_s": cpu + 1,
            "cpu_s": cpu,
            "max_rss_mib": 90.0,
            "items_per_cpu_s": 100 / cpu,
        }

    runs = [crawl("before", c) for c in (10, 20, 30)] + [crawl("after", c) for c in (5, 10, 8)]
    summary = {
        n: revisions.medians([r for r in runs if r["revision"] == n]) for n in ("before", "after")
    }
    assert summary["before"]["cpu_s"] == 20 and summary["after"]["cpu_s"] == 8
    ratios = revisions.ratios(summary)
    assert ratios["items_per_cpu_s"] == pytest.approx((100 / 8) / (100 / 20))
    assert ratios["max_rss_mib"] == 1
    assert revisions.failures(runs) == []
    bad = [crawl("after", 5, code=5), crawl("after", 5, exact=False)]
    assert revisions.failures(runs + bad) == bad


def test_revisions_end_to_end(tmp_path, capsys):
    """HEAD against HEAD on 100 products: two worktrees, exact items, a ratio, nothing left."""
    out = tmp_path / "revisions.json"
    argv = ["--before", "HEAD", "--after", "HEAD", "--products", "100", "--repeat", "1"]
    assert revisions.main([*argv, "--workdir", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "after/before" in printed and "items / CPU s" in printed
    result = json.loads(out.read_text())
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert {n: r["sha"] for n, r in result["revisions"].items()} == {
        "before": head.strip(),
        "after": head.strip(),
    }
    assert [(r["revision"], r["round"]) for r in result["runs"]] == [("before", 1), ("after", 1)]
    for r in result["runs"]:
        assert r["returncode"] == 0 and r["exact"], r["verify"]
        assert r["items"] == result["expected_items"] > 0
        assert r["profile"] == "1gb" and r["cpu_s"] > 0
        assert "PROFILE=1gb" in r["measured"]["argv"]
    # Each revision crawled from its own worktree, removed at exit.
    before, after = (Path(r["cwd"]) for r in result["runs"])
    assert before != after and before.name == "before" and after.name == "after"
    assert not before.exists() and not after.exists()
    assert result["all_exact"] and result["ratios"]["items_per_cpu_s"] > 0
    # The temporary worktrees are gone from the repository.
    listed = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True).stdout
    assert "plt-revisions-" not in listed


def test_distributed_arguments():
    args = distributed.parse_args([])
    assert (args.products, args.workers, args.faults) == (20103, 3, "every")
    assert args.scenarios == ["clean", "kill-wipe", "redis-restart"]
    assert (args.at, args.outage_seconds, args.json) == (20103 // 3, 5.0, None)
    args = distributed.parse_args(
        ["--scenarios", "redis-restart,clean", "--workers", "1", "--faults", "none", "--at", "7"]
    )
    assert (args.scenarios, args.workers, args.faults, args.at) == (
        ["clean", "redis-restart"], 1, "none", 7,
    )  # fmt: skip
    for bad in (
        ["--scenarios", "clean,crash"],
        ["--faults", "some"],
        ["--workers", "1"],  # kill-wipe needs a worker to survive
        ["--at", "0"],
        ["--products", "0"],
        ["--outage-seconds", "-1"],
    ):
        with pytest.raises(SystemExit):
            distributed.parse_args(bad)


def test_monitor_command_names():
    assert _command_name(b'EVALSHA" "ab12" "7" "plt:x:seen"') == "evalsha"
    assert _command_name(b'CONFIG" "GET" "maxmemory-policy"') == "config|get"
    assert _command_name(b'script" "load" "return 1"') == "script|load"
    assert _command_name(b'SISMEMBER" "plt:x:exported" "12"') == "sismember"


def test_distributed_end_to_end(tmp_path, capsys):
    """Two workers, 150 products, no faults: exact items, and Redis counted per product."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; CI must install it", pytrace=False)
        pytest.skip("redis-server is not installed")
    out = tmp_path / "dist.json"
    argv = ["--products", "150", "--workers", "2", "--scenarios", "clean", "--faults", "none"]
    assert distributed.main([*argv, "--workdir", str(tmp_path), "--json", str(out)]) == 0
    assert "== clean: 2 workers" in capsys.readouterr().out
    (clean,) = json.loads(out.read_text())["scenarios"]
    assert clean["rounds"][-1]["exit"] == {"w0": 0, "w1": 0}
    assert clean["items"]["exact"], clean["items"]
    assert clean["exported"] == clean["expected_items"]
    figures = clean["figures"]
    assert figures["round_trips_per_product"] > 0
    # commandstats counts what scripts run too: more calls than round trips.
    assert figures["calls_per_product"] > figures["round_trips_per_product"]
    assert clean["monitor"]["sent"]["evalsha"] == clean["commandstats"]["evalsha"]
    assert clean["memory"]["key_bytes"] and figures["key_bytes_per_product"] > 0


def test_faults_runs_a_job_until_it_ends_and_checks_it(tmp_path):
    from benchmarks import faults

    out = tmp_path / "faults.json"
    assert (
        faults.main(["--products", "150", "--workdir", str(tmp_path / "w"), "--json", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    assert report["exact"] and report["runs"][-1]["exit"] in (0, 5)
    assert all(run["exit"] == 3 for run in report["runs"][:-1])
    assert report["given_up_not_expected"] == report["expected_not_given_up"] == []
