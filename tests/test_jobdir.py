"""An unusable job directory: one line naming the file and the way out, exit 2."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plt.commands.crawl import JOB_STATE_ERROR_EXIT
from plt.job.jobdir import FAILED_FILE
from plt.job.sqlite import ITEMS_FILE, STATE_FILE
from tests.conftest import PROJECT, crawl_argv, crawl_env, run_crawl, runs


def errors_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if " ERROR: " in line]


def assert_one_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == JOB_STATE_ERROR_EXIT, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = errors_of(proc)
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0]
    return errors[0]


def make_job(jobdir: Path, shop) -> None:
    proc = run_crawl(jobdir, shop.url, "CLOSESPIDER_ITEMCOUNT=5")
    assert proc.returncode == 0, proc.stderr[-2000:]


def queued_rows(jobdir: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(jobdir / STATE_FILE)
    rows = db.execute("SELECT id, data FROM requests WHERE state=0 ORDER BY id").fetchall()
    db.close()
    assert rows
    return rows


def set_rows(jobdir: Path, rows: dict[int, object]) -> None:
    db = sqlite3.connect(jobdir / STATE_FILE)
    db.executemany("UPDATE requests SET data=? WHERE id=?", [(d, i) for i, d in rows.items()])
    db.commit()
    db.close()


def test_jobdir_that_is_a_file(shop, tmp_path):
    path = tmp_path / "job"
    path.write_text("a file")
    proc = run_crawl(path, shop.url)
    assert_one_line(proc, f"JOBDIR {path} is a file", "choose another JOBDIR")


@pytest.fixture
def read_only() -> Iterator:
    """Makes a directory and its files read-only, even for root (chattr +i)."""
    made: list[Path] = []

    def make(*paths: Path) -> None:
        if os.geteuid() != 0:
            for p in paths:
                p.chmod(0o555 if p.is_dir() else 0o444)
        elif (
            shutil.which("chattr") is None
            or subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode
        ):
            pytest.skip("root without chattr +i: nothing is read-only")
        made.extend(paths)

    yield make
    if made and os.geteuid() == 0:
        subprocess.run(["chattr", "-i", *map(str, made)], check=True)
    for p in made:
        p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.mark.parametrize("what", ["directory", ITEMS_FILE])
def test_read_only_jobdir(shop, tmp_path, read_only, what):
    make_job(tmp_path, shop)
    path = tmp_path if what == "directory" else tmp_path / what
    read_only(*([tmp_path, *tmp_path.iterdir()] if what == "directory" else [path]))
    proc = run_crawl(tmp_path, shop.url)
    assert_one_line(proc, f"The job directory {tmp_path} is read-only ({path} cannot be written)")
    assert "make it writable and run the same command again" in proc.stderr


def test_a_full_disk_stops_cleanly_and_the_same_command_resumes_exact(shop, tmp_path):
    # The job state may grow by 40 pages (160 KiB), then SQLite reports
    # SQLITE_FULL as on a full disk; the whole crawl needs about 100.
    argv = crawl_argv(tmp_path, shop.url)
    capped = [sys.executable, "-m", "tests.full_disk", "40", *argv[3:]]
    proc = subprocess.run(capped, cwd=PROJECT, env=crawl_env(), capture_output=True, text=True)
    assert_one_line(
        proc,
        f"Cannot write {tmp_path / STATE_FILE} (database or disk is full)",
        "nothing done so far is lost",
        "run the same command again to resume",
    )
    first = runs(tmp_path)[-1]
    assert first["finish_reason"] == "job_state_error"
    assert first.get("item_scraped_count", 0) > 0  # it stopped midway
    resumed = run_crawl(tmp_path, shop.url)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming job" in resumed.stderr
    result = shop.compare(tmp_path / ITEMS_FILE)
    assert result.exact, result.summary()


@pytest.fixture
def project_jobdir() -> Iterator[Path]:
    """A job directory where the default ones are: jobs/ beside scrapy.cfg."""
    path = PROJECT / "jobs" / f"test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


EVIL = 'from pathlib import Path\nPath(__file__).with_name("MARKER").touch()\nclass X: ...\n'


def test_a_request_naming_a_module_in_the_job_directory_is_never_imported(shop, project_jobdir):
    make_job(project_jobdir, shop)
    (project_jobdir / "evil.py").write_text(EVIL)
    module = f"jobs.{project_jobdir.name}.evil"
    marker = project_jobdir / "MARKER"
    # The module is importable by that name from the project, as `scrapy` runs it.
    subprocess.run(
        [sys.executable, "-c", f"import importlib; importlib.import_module({module!r})"],
        cwd=PROJECT,
        env=crawl_env(),
        check=True,
    )
    assert marker.exists()
    marker.unlink()
    row_id, data = queued_rows(project_jobdir)[0]
    set_rows(project_jobdir, {row_id: json.dumps({**json.loads(data), "_class": f"{module}.X"})})
    proc = run_crawl(project_jobdir, shop.url)
    assert not marker.exists()
    assert_one_line(proc, "were given up: 1 in", "PLT_JOB_RESET=1")
    assert f"request class '{module}.X' is not one of Scrapy's" in proc.stderr
    assert runs(project_jobdir)[-1]["plt/job/undecodable"] == 1


def test_undecodable_rows_are_given_up_with_one_warning(shop, tmp_path):
    make_job(tmp_path, shop)
    rows = queued_rows(tmp_path)
    bad = {rows[0][0]: "{garbage", rows[1][0]: pickle.dumps(json.loads(rows[1][1]))}
    set_rows(tmp_path, bad)
    proc = run_crawl(tmp_path, shop.url)
    error = assert_one_line(proc, "were given up: 2 in", str(tmp_path / FAILED_FILE))
    assert "The job cannot finish" in error
    warnings = [line for line in proc.stderr.splitlines() if " WARNING: " in line]
    assert len(warnings) == 1 and "cannot be decoded" in warnings[0]
    assert runs(tmp_path)[-1]["plt/job/undecodable"] == 2
    failed = [json.loads(line) for line in (tmp_path / FAILED_FILE).read_text().splitlines()]
    assert sorted(f["request"] for f in failed) == sorted(bad)
    # Every other request was fetched; running again says the same, at once.
    again = run_crawl(tmp_path, shop.url)
    assert_one_line(again, "were given up: 2 in")
    assert runs(tmp_path)[-1].get("downloader/request_count", 0) == 0


def test_a_filesystem_without_wal_mode_is_one_clear_error(tmp_path):
    import sqlite3

    from plt.job.jobdir import JobStateError, enable_wal

    db = sqlite3.connect(":memory:")  # an in-memory database cannot use WAL mode
    with pytest.raises(JobStateError, match="cannot use SQLite's WAL mode"):
        enable_wal(db, tmp_path / "plt-state.sqlite")
