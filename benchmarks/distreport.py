"""benchmarks/distributed.py's items check and report.

The items check relies on two things only: a finished crawl leaves
``items.jsonl``, holding every product exported in Redis, in the JOBDIR of the
worker that saw it done, and ``python -m plt.distributed.merge`` gathers
workers' files when none did.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import ROOT, count_lines, fmt, plt_env, render_table, verify

if TYPE_CHECKING:
    from benchmarks.distcrawl import Crawl

TOP_COMMANDS = 10
KILLED = -9  # returncode of a process ended by SIGKILL


def check_items(crawl: Crawl, exported: int, truth: list[dict[str, Any]]) -> dict[str, Any]:
    """The crawl's final items files, each against the ground truth.

    An items.jsonl with fewer lines than the products exported in Redis is an
    earlier merge (a worker that stopped while the crawl was not done): it is
    listed, not checked. With no final file anywhere (workers on separate
    machines each hold a part), the documented merge runs over the surviving
    workers' files; if it writes nothing either, those files are checked as one.
    """
    result: dict[str, Any] = {"merge": None, "unmerged": None, "earlier": []}
    files = []
    for path in crawl.items_files():
        lines, written = count_lines(path), crawl.written.get(str(path))
        if lines >= exported:
            files.append((path, f"written in round {written}"))
        else:
            result["earlier"].append({"path": str(path), "round": written, "lines": lines})
    if not files:
        result["merge"] = merge(crawl)
        out = Path(result["merge"]["out"])
        if result["merge"]["exit"] == 0 and out.is_file():
            files.append((out, "written by the merge"))
    result["files"] = [{"path": str(p), "when": w, "verify": verify(p, truth)} for p, w in files]
    if not files:
        sources = worker_files(crawl)
        result["unmerged"] = {"paths": [str(p) for p in sources], "verify": verify(sources, truth)}
    result["exact"] = bool(files) and all(f["verify"]["exact"] for f in result["files"])
    return result


def worker_files(crawl: Crawl) -> list[Path]:
    dirs = sorted({crawl.jobdirs[w] for w in crawl.alive})
    return [f for d in dirs for f in sorted(d.glob("items-*.jsonl"))]


def merge(crawl: Crawl) -> dict[str, Any]:
    dirs = sorted({crawl.jobdirs[w] for w in crawl.alive})
    others = [f for d in dirs[1:] for f in sorted(d.glob("items-*.jsonl"))]
    argv = [sys.executable, "-m", "plt.distributed.merge", str(dirs[0]), *map(str, others)]
    argv += ["--redis-url", crawl.redis.url, "--job", crawl.job]
    done = subprocess.run(
        argv, cwd=ROOT, env=plt_env(), capture_output=True, text=True, timeout=600, check=False
    )
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    out = dirs[0] / "items.jsonl"
    return {"argv": argv, "exit": done.returncode, "said": said[-3:], "out": str(out)}


# -- the report ------------------------------------------------------------------


def exit_text(status: int | None) -> str:
    if status is None:
        return "-"
    return "SIGKILL" if status == KILLED else str(status)


def rounds_table(s: dict[str, Any]) -> str:
    workers = s["workers"]
    rows = [
        [str(r["round"]), *(exit_text(r["exit"].get(w)) for w in workers), fmt(r["wall_s"])]
        for r in s["rounds"]
    ]
    return render_table(["round", *workers, "wall s"], rows)


def event_line(s: dict[str, Any], at: int) -> str:
    e = s["event"]
    if s["scenario"] == "clean":
        return "fault: none"
    if not e:
        return f"fault: not struck: the crawl never reached {at:,} exports"
    if e["kind"] == "kill-wipe":
        how = "killed (SIGKILL)" if e["killed"] else f"had exited ({exit_text(e['exit'])})"
        return (
            f"fault: {e['worker']} {how} at {e['exported_at_kill']:,} exports; "
            f"its JOBDIR deleted with {e['items_lines_wiped']:,} item lines; not run again"
        )
    return (
        f"fault: Redis shut down at {e['exported_at_shutdown']:,} exports, started again "
        f"{e['outage_s']:.1f} s later; {e['exported_after_restart']:,} exported after the restart"
    )


def verdict(v: dict[str, Any]) -> str:
    return (
        f"{v['items']:,} items of {v['expected']:,} expected: missing {v['missing']}, "
        f"extra {v['extra']}, repeated {v['repeated']}, field differences "
        f"{v['field_differences']}: {'exact' if v['exact'] else 'NOT exact'}"
    )


def items_lines(s: dict[str, Any], root: Path) -> list[str]:
    items = s["items"]
    out = []
    for e in items["earlier"]:
        out.append(
            f"earlier merge, not checked: {_name(e['path'], root)} (written in round "
            f"{e['round']}): {e['lines']:,} lines, {s['exported']:,} products exported"
        )
    if items["merge"] is not None:
        m = items["merge"]
        said = m["said"][-1] if m["said"] else "(nothing said)"
        out.append("items: no items.jsonl with every exported product in any JOBDIR left")
        out.append(f"merge of the survivors' files: exit {m['exit']}: {said}")
    for f in items["files"]:
        out.append(f"items: {_name(f['path'], root)} ({f['when']}): {verdict(f['verify'])}")
    if items["unmerged"] is not None:
        out.append(f"survivors' worker files read together: {verdict(items['unmerged']['verify'])}")
    return out


def _name(path: str, root: Path) -> str:
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


def redis_figures(s: dict[str, Any]) -> dict[str, Any]:
    """Per exported product: commands and memory."""
    n = max(1, s["exported"])
    calls = sum(s["commandstats"].values())
    mon = s["monitor"]
    sent = sum(mon["sent"].values()) if mon["on"] else None
    scripted = sum(mon["scripted"].values()) if mon["on"] else None
    mem = s["memory"]
    keys = sum(mem["key_bytes"].values())
    return {
        "calls": calls,
        "calls_per_product": calls / n,
        "round_trips": sent,
        "round_trips_per_product": None if sent is None else sent / n,
        "scripted_per_product": None if scripted is None else scripted / n,
        "bytes_per_product": (mem["used_after"] - mem["used_before"]) / n,
        "key_bytes": keys,
        "key_bytes_per_product": keys / n,
    }


def figures_table(s: dict[str, Any]) -> str:
    f, mem, mib = s["figures"], s["memory"], 1 << 20
    rows = [
        ["rounds", len(s["rounds"])],
        ["wall s, all rounds, start-up included", fmt(s["wall_s"])],
        ["products exported (SCARD)", fmt(s["exported"], 0)],
        ["Redis calls (INFO commandstats)", fmt(f["calls"], 0)],
        ["  per exported product", fmt(f["calls_per_product"])],
        ["round trips per product (see below)", fmt(f["round_trips_per_product"])],
        ["commands run in scripts per product", fmt(f["scripted_per_product"])],
        ["used_memory before, MiB", fmt(mem["used_before"] / mib, 2)],
        ["used_memory after, MiB", fmt(mem["used_after"] / mib, 2)],
        ["used_memory peak sampled 1/s, no client buffers, MiB",
         fmt(mem["peak_without_clients"] / mib, 2)],
        ["  (after - before) bytes per exported product", fmt(f["bytes_per_product"], 0)],
        ["MEMORY USAGE of the crawl's keys, bytes per product", fmt(f["key_bytes_per_product"], 0)],
    ]  # fmt: skip
    return render_table(["figure", "value"], rows)


def commands_table(s: dict[str, Any]) -> str:
    stats, mon, n = s["commandstats"], s["monitor"], max(1, s["exported"])
    top = sorted(stats.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_COMMANDS]
    rows = []
    for name, calls in top:
        sent = fmt(mon["sent"].get(name, 0), 0) if mon["on"] else "-"
        scripted = fmt(mon["scripted"].get(name, 0), 0) if mon["on"] else "-"
        rows.append([name, fmt(calls, 0), fmt(calls / n, 2), sent, scripted])
    header = ["command", "calls", "per product", "sent by workers", "run in scripts"]
    return render_table(header, rows)


def keys_table(s: dict[str, Any], job: str) -> str:
    n = max(1, s["exported"])
    sizes = sorted(s["memory"]["key_bytes"].items(), key=lambda kv: -kv[1])
    rows = [[k.removeprefix(f"plt:{job}:"), fmt(b, 0), fmt(b / n, 1)] for k, b in sizes]
    return render_table(["key", "MEMORY USAGE bytes", "per product"], rows)


def render(summary: dict[str, Any]) -> str:
    out = [
        f"Demo retailer: {summary['products']:,} products, faults {summary['faults']}; "
        f"{summary['workers']} workers at {summary['concurrency']} concurrent requests, "
        f"PROFILE={summary['profile']}",
        "",
    ]
    for s in summary["scenarios"]:
        root = Path(s["jobdirs"][s["workers"][0]]).parent.parent
        redis = "AOF, appendfsync always" if s["redis_persistent"] else "no persistence"
        dirs = "a JOBDIR each" if s["scenario"] == "kill-wipe" else "one shared JOBDIR"
        out += [
            f"== {s['scenario']}: {len(s['workers'])} workers, {dirs}; Redis {redis}; "
            f"{s['expected_items']:,} products in the ground truth ==",
            "",
            rounds_table(s),
            "",
            event_line(s, summary["at"]),
            "",
            *items_lines(s, root),
            "",
            figures_table(s),
            "",
            commands_table(s),
            "",
            keys_table(s, s["job"]),
            "",
        ]
        complete = s["monitor"]["complete"] and s["event"].get("monitor_complete", True)
        if s["monitor"]["on"] and not complete:
            out += ["MONITOR did not read up to its marker: round trips are a lower bound", ""]
    out += [
        "Round trips: the commands workers sent, as MONITOR shows them: an EVALSHA counts",
        "once however many commands its script runs, a pipeline counts as its commands.",
        "MONITOR leaves out a few admin commands (CONFIG GET). INFO commandstats counts",
        "both an EVALSHA and every command its script runs. This benchmark's own",
        "commands are taken out of both. Around a Redis restart, the few commands between",
        "the last count and the SHUTDOWN are in neither.",
    ]
    return "\n".join(out)
