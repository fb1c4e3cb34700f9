"""Deployment: the egg for scrapyd (deployed to a real scrapyd) and shub's scrapinghub.yml."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT
from tests.helpers import terminate

BIN = Path(sys.executable).parent
# Loopback only: never let an environment proxy see the test's traffic.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PROJECT_FILES = ("plt", "settings_profiles", "setup.py", "scrapy.cfg", "pyproject.toml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    """No PYTHONPATH to the source tree: the deployed egg must carry the project."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT"):
        env.pop(name, None)
    return env


def copy_project(dest: Path, deploy_url: str) -> Path:
    """The project's files in ``dest``, its [deploy] target pointing at ``deploy_url``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PROJECT_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    cfg = configparser.ConfigParser()
    cfg.read(dest / "scrapy.cfg")
    cfg["deploy"]["url"] = deploy_url
    with (dest / "scrapy.cfg").open("w") as f:
        cfg.write(f)
    return dest


class Scrapyd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Scrapyd:
        dirs = {name: self.root / name for name in ("eggs", "logs", "dbs")}
        conf = "\n".join(
            [
                "[scrapyd]",
                "bind_address = 127.0.0.1",
                f"http_port = {self.port}",
                *(f"{name}_dir = {path}" for name, path in dirs.items()),
                "items_dir =",
                "jobs_dir =",
                "poll_interval = 0.5",
                "max_proc = 1",
                "",
            ]
        )
        (self.root / "scrapyd.conf").write_text(conf)  # read from the working directory
        with (self.root / "scrapyd.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "scrapyd")], cwd=self.root, env=clean_env(), stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.get("daemonstatus.json")["status"] == "ok":
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("scrapyd did not start: " + (self.root / "scrapyd.out").read_text())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc, timeout=15)

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with OPENER.open(self.url + path + query, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        data = urllib.parse.urlencode(fields).encode()
        with OPENER.open(self.url + path, data=data, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path: Path) -> Iterator[Scrapyd]:
    root = tmp_path / "scrapyd"
    root.mkdir()
    server = Scrapyd(root).start()
    try:
        yield server
    finally:
        server.stop()


def test_scrapy_cfg_has_a_scrapyd_target():
    cfg = configparser.ConfigParser()
    cfg.read(PROJECT / "scrapy.cfg")
    assert cfg["deploy"]["project"] == "plt"
    url = urllib.parse.urlsplit(cfg["deploy"]["url"])
    assert (url.scheme, url.hostname) == ("http", "127.0.0.1")


def test_egg_carries_the_project_and_its_profiles(tmp_path):
    project = copy_project(tmp_path / "project", "http://127.0.0.1:6800/")
    subprocess.run(
        [sys.executable, "setup.py", "bdist_egg", "-d", str(tmp_path / "dist")],
        cwd=project,
        env=clean_env(),
        check=True,
        capture_output=True,
    )
    (egg,) = (tmp_path / "dist").glob("*.egg")
    with zipfile.ZipFile(egg) as z:
        names = set(z.namelist())
        entry_points = z.read("EGG-INFO/entry_points.txt").decode()
    assert {"plt/settings.py", "plt/distributed/state.py", "plt/shop/server.py"} <= names
    profiles = {p.name for p in (PROJECT / "settings_profiles").glob("*.py")}
    assert {f"settings_profiles/{name}" for name in profiles} <= names
    assert not any(name.startswith("tests/") for name in names)
    assert "settings = plt.settings" in entry_points


def test_deploy_to_scrapyd_and_run_a_job_with_a_profile(shop, scrapyd, tmp_path):
    project = copy_project(tmp_path / "project", scrapyd.url)
    deploy = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--version", "1"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deploy.returncode == 0, deploy.stderr + deploy.stdout
    assert json.loads(deploy.stdout)["status"] == "ok", deploy.stdout
    assert scrapyd.get("listspiders.json", project="plt")["spiders"] == ["product"]

    jobdir = tmp_path / "job"
    settings = [
        "PROFILE=512mb",
        f"SHOP_URL={shop.url}",
        f"JOBDIR={jobdir}",
    ]
    fields = [("project", "plt"), ("spider", "product")]
    fields += [("setting", s) for s in settings]
    scheduled = scrapyd.post("schedule.json", fields)
    assert scheduled["status"] == "ok", scheduled
    job = scheduled["jobid"]
    deadline = time.monotonic() + 120
    while not any(j["id"] == job for j in scrapyd.get("listjobs.json", project="plt")["finished"]):
        assert time.monotonic() < deadline, "the scrapyd job did not finish"
        time.sleep(0.5)

    log = (scrapyd.root / "logs" / "plt" / "product" / f"{job}.log").read_text()
    assert "Memory profile 512mb: PLT_MAX_CONCURRENT_REQUESTS=32" in log, log[-3000:]
    run = json.loads((jobdir / "runs.jsonl").read_text().splitlines()[-1])
    assert run["finish_reason"] == "finished", log[-3000:]
    assert run["plt/profile"] == "512mb"
    result = shop.compare(jobdir / "items.jsonl")
    assert result.exact, result.summary()


def test_scrapinghub_yml_names_the_requirements_and_a_scrapy_2_stack():
    conf = yaml.safe_load((PROJECT / "scrapinghub.yml").read_text())
    requirements = PROJECT / conf["requirements"]["file"]
    assert requirements.is_file()
    pins = requirements.read_text().splitlines()
    assert any(line.startswith("redis==") for line in pins)
    assert conf["stack"].startswith("scrapy:2.")
