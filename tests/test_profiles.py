from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider, signals
from scrapy.addons import AddonManager
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

import settings_profiles
from plt.errors import ConfigError
from plt.profiles import (
    CAPPED,
    PROFILE_PRIORITY,
    ProfileAddon,
    UnknownProfileError,
    available_profiles,
    load_profile,
)

PROJECT = Path(__file__).resolve().parents[1]
ADDON = {"plt.profiles.ProfileAddon": 0}
REQUIRED = {
    "PLT_MAX_CONCURRENT_REQUESTS": int,
    "MEMUSAGE_LIMIT_MB": int,
    "MEMUSAGE_WARNING_MB": int,
    "DOWNLOAD_MAXSIZE": int,
    "DOWNLOAD_WARNSIZE": int,
    "SCRAPER_SLOT_MAX_ACTIVE_SIZE": int,
    "PLT_MEMORY_BUDGET_MB": int,
    "PLT_GOVERNOR_HIGH": float,
    "PLT_GOVERNOR_PAUSE": float,
    "PLT_GOVERNOR_LOW": float,
    "PLT_GOVERNOR_MIN_CONCURRENCY": int,
    "PLT_GOVERNOR_RAISE_STEP": int,
}


class PlainSpider(Spider):
    name = "plain"


# -- the profiles ------------------------------------------------------------


def test_available_profiles_smallest_first() -> None:
    assert available_profiles() == ["256mb", "512mb", "1gb", "2gb"]


@pytest.mark.parametrize("name", ["256mb", "512mb", "1gb", "2gb"])
def test_profile_sets_the_required_keys(name: str) -> None:
    values = load_profile(name)
    for key, kind in REQUIRED.items():
        assert isinstance(values.get(key), kind), key
    assert all(key.isupper() for key in values)
    module = importlib.import_module(f"settings_profiles.profile_{name}")
    assert module.__doc__ and len(module.__doc__) > 200  # explains its values

    # A ceiling only: how hard to hit the retailer is not the profile's to say.
    assert not set(CAPPED) & set(values)
    assert values["MEMUSAGE_WARNING_MB"] < values["MEMUSAGE_LIMIT_MB"]
    assert values["PLT_MEMORY_BUDGET_MB"] <= values["MEMUSAGE_LIMIT_MB"]
    assert 0 < values["PLT_GOVERNOR_LOW"] < values["PLT_GOVERNOR_HIGH"]
    assert values["PLT_GOVERNOR_HIGH"] <= values["PLT_GOVERNOR_PAUSE"] < 1
    assert 1 <= values["PLT_GOVERNOR_MIN_CONCURRENCY"] < values["PLT_MAX_CONCURRENT_REQUESTS"]
    assert values["DOWNLOAD_WARNSIZE"] < values["DOWNLOAD_MAXSIZE"]
    # The worst case of in-flight bodies stays within the budget.
    in_flight = values["PLT_MAX_CONCURRENT_REQUESTS"] * values["DOWNLOAD_MAXSIZE"]
    assert in_flight < values["PLT_MEMORY_BUDGET_MB"] * 1024 * 1024


def test_1gb_matches_scrapy_cloud() -> None:
    values = load_profile("1gb")
    assert values["MEMUSAGE_LIMIT_MB"] == 950
    assert values["MEMUSAGE_WARNING_MB"] < 950


def test_bigger_budgets_get_more_concurrency() -> None:
    profiles = [load_profile(name) for name in available_profiles()]
    keys = ("PLT_MAX_CONCURRENT_REQUESTS", "MEMUSAGE_LIMIT_MB", "SCRAPER_SLOT_MAX_ACTIVE_SIZE")
    for key in keys:
        values = [p[key] for p in profiles]
        assert values == sorted(values) and len(set(values)) == len(values), key


def test_profile_names_are_normalized() -> None:
    assert load_profile(" 1GB ") == load_profile("1gb")


def test_unknown_profile_lists_the_available_ones() -> None:
    with pytest.raises(UnknownProfileError) as excinfo:
        load_profile("3gb")
    message = str(excinfo.value)
    assert "'3gb'" in message
    assert "256mb, 512mb, 1gb, 2gb" in message


def test_discovery_works_from_a_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Deployed as an egg, the package is inside a zip: no directory to list.
    archive = tmp_path / "project.egg"
    package_dir = Path(settings_profiles.__file__).parent
    with zipfile.ZipFile(archive, "w") as zf:
        for path in package_dir.glob("*.py"):
            zf.write(path, f"zipped_profiles/{path.name}")
    monkeypatch.syspath_prepend(str(archive))
    assert available_profiles("zipped_profiles") == ["256mb", "512mb", "1gb", "2gb"]
    assert load_profile("512mb", "zipped_profiles") == load_profile("512mb")
    module = sys.modules["zipped_profiles.profile_512mb"]
    assert str(archive) in module.__file__
    for name in [n for n in sys.modules if n.startswith("zipped_profiles")]:
        monkeypatch.delitem(sys.modules, name)


# -- the add-on and priorities ---------------------------------------------------


def apply_addon(settings: Settings) -> Settings:
    """Run the add-ons of ``settings`` on it, as Crawler._apply_settings does."""
    AddonManager(get_crawler()).load_settings(settings)
    return settings


def project_settings(**values: Any) -> Settings:
    settings = Settings()
    settings.setdict({"ADDONS": ADDON, **values}, priority="project")
    return settings


def test_default_profile_is_1gb_and_beats_project_settings() -> None:
    crawler = get_crawler(settings_dict={"ADDONS": ADDON, "MEMUSAGE_LIMIT_MB": 4000})
    assert crawler.settings.getint("MEMUSAGE_LIMIT_MB") == 950
    assert crawler.settings.getpriority("MEMUSAGE_LIMIT_MB") == PROFILE_PRIORITY
    assert crawler.settings.getint("PLT_MEMORY_BUDGET_MB") == 950
    assert crawler.settings.getint("PLT_MAX_CONCURRENT_REQUESTS") == 64


def test_profile_keeps_scrapys_polite_concurrency() -> None:
    # Scrapy's defaults, 16 in all and 8 per host, are under every profile's ceiling.
    for name in available_profiles():
        settings = apply_addon(project_settings(PROFILE=name))
        assert settings.getint("CONCURRENT_REQUESTS") == 16, name
        assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 8, name


def test_profile_keeps_the_users_concurrency_under_its_ceiling() -> None:
    settings = project_settings(PROFILE="2gb", CONCURRENT_REQUESTS=5)
    settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", 3, priority="cmdline")
    apply_addon(settings)
    assert settings.getint("CONCURRENT_REQUESTS") == 5
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 3


@pytest.mark.parametrize(("name", "cap"), [("256mb", 16), ("512mb", 32), ("1gb", 64)])
def test_profile_lowers_concurrency_above_its_ceiling(name: str, cap: int) -> None:
    settings = project_settings(PROFILE=name)
    for key in CAPPED:
        settings.set(key, 100, priority="cmdline")
    apply_addon(settings)
    assert [settings.getint(key) for key in CAPPED] == [cap, cap]


def test_ceiling_itself_can_be_set() -> None:
    settings = project_settings(PROFILE="256mb", CONCURRENT_REQUESTS=100)
    settings.set("PLT_MAX_CONCURRENT_REQUESTS", 40, priority="cmdline")
    assert apply_addon(settings).getint("CONCURRENT_REQUESTS") == 40


def test_ceiling_without_a_profile() -> None:
    settings = apply_addon(
        project_settings(PROFILE="none", CONCURRENT_REQUESTS=100, PLT_MAX_CONCURRENT_REQUESTS=10)
    )
    assert settings.getint("CONCURRENT_REQUESTS") == 10
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 8


def test_cmdline_beats_profile() -> None:
    settings = project_settings(PROFILE="512mb", MEMUSAGE_LIMIT_MB=5)
    settings.set("MEMUSAGE_LIMIT_MB", 9, priority="cmdline")
    apply_addon(settings)
    assert settings.getint("MEMUSAGE_LIMIT_MB") == 9
    assert settings.getint("MEMUSAGE_WARNING_MB") == 400  # the rest still applies


def test_profile_chosen_on_the_cmdline() -> None:
    settings = project_settings(PROFILE="1gb")
    settings.set("PROFILE", "2gb", priority="cmdline")
    assert apply_addon(settings).getint("MEMUSAGE_LIMIT_MB") == 1900


def test_spider_custom_settings_beat_profile() -> None:
    class CustomSpider(Spider):
        name = "custom"
        custom_settings = {"MEMUSAGE_WARNING_MB": 3, "PROFILE": "512mb"}

    crawler = get_crawler(CustomSpider, settings_dict={"ADDONS": ADDON, "PROFILE": "2gb"})
    assert crawler.settings.getint("MEMUSAGE_WARNING_MB") == 3
    assert crawler.settings.getint("MEMUSAGE_LIMIT_MB") == 475  # the spider's profile


@pytest.mark.parametrize("off", ["none", "None", "", None])
def test_no_profile(off: str | None) -> None:
    settings = apply_addon(project_settings(PROFILE=off, CONCURRENT_REQUESTS=5))
    assert settings.getint("CONCURRENT_REQUESTS") == 5
    assert settings.getint("MEMUSAGE_LIMIT_MB") == 0
    assert "PLT_MEMORY_BUDGET_MB" not in settings


def test_unknown_profile_is_a_config_error_not_an_exit() -> None:
    # An embedding program gets an exception it can catch, not SystemExit.
    with pytest.raises(ConfigError) as excinfo:
        ProfileAddon.update_pre_crawler_settings(Settings({"PROFILE": "bogus"}))
    assert str(excinfo.value) == (
        "Unknown memory profile 'bogus' (PROFILE setting); available profiles: "
        "256mb, 512mb, 1gb, 2gb; use PROFILE=none for no profile"
    )
    with pytest.raises(ConfigError, match="'bogus'"):
        get_crawler(settings_dict={"ADDONS": ADDON, "PROFILE": "bogus"})


def test_unknown_profile_in_custom_settings_stops_too() -> None:
    class BadSpider(Spider):
        name = "bad"
        custom_settings = {"PROFILE": "64kb"}

    with pytest.raises(UnknownProfileError, match="'64kb'"):
        get_crawler(BadSpider, settings_dict={"ADDONS": ADDON})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CONCURRENT_REQUESTS", 0, "CONCURRENT_REQUESTS must be positive, got 0"),
        ("CONCURRENT_REQUESTS_PER_DOMAIN", -2, "must be positive, got -2"),
        ("PLT_MAX_CONCURRENT_REQUESTS", -1, "PLT_MAX_CONCURRENT_REQUESTS must be 0 or more"),
    ],
)
def test_non_positive_concurrency_is_a_config_error(key: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProfileAddon.update_pre_crawler_settings(Settings({key: value}))
    settings = project_settings()
    settings.set(key, value, priority="cmdline")
    with pytest.raises(ConfigError, match=message):
        apply_addon(settings)


def test_logs_the_profile_and_the_concurrency_and_sets_a_stat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="plt.profiles"):
        crawler = get_crawler(
            settings_dict={"ADDONS": ADDON, "PROFILE": "1gb", "CONCURRENT_REQUESTS": 100}
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "plt.profiles"]
    assert len(lines) == 2
    assert lines[0].startswith(
        "Memory profile 1gb: PLT_MAX_CONCURRENT_REQUESTS=64, MEMUSAGE_LIMIT_MB=950,"
    )
    assert lines[1] == (
        "Concurrency: CONCURRENT_REQUESTS=64 (lowered from 100), "
        "CONCURRENT_REQUESTS_PER_DOMAIN=8; memory allows up to 64 (PLT_MAX_CONCURRENT_REQUESTS)"
    )
    crawler.signals.send_catch_log(signals.engine_started)
    assert crawler.stats.get_value("plt/profile") == "1gb"


def test_log_marks_overridden_values(caplog: pytest.LogCaptureFixture) -> None:
    settings = project_settings(PROFILE="256mb")
    settings.set("MEMUSAGE_LIMIT_MB", 4, priority="cmdline")
    with caplog.at_level(logging.INFO, logger="plt.profiles"):
        apply_addon(settings)
    assert "MEMUSAGE_LIMIT_MB=4 (overridden)" in caplog.text


def test_addon_without_crawler() -> None:
    settings = project_settings(PROFILE="512mb", CONCURRENT_REQUESTS=50)
    ProfileAddon().update_settings(settings)
    assert settings.getint("CONCURRENT_REQUESTS") == 32


# -- `scrapy crawl` in a real process -------------------------------------------------


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    (tmp_path / "scrapy.cfg").write_text("[settings]\ndefault = tiny.settings\n")
    (tmp_path / "tiny" / "spiders").mkdir(parents=True)
    (tmp_path / "tiny" / "__init__.py").write_text("")
    (tmp_path / "tiny" / "spiders" / "__init__.py").write_text("")
    (tmp_path / "tiny" / "settings.py").write_text(
        "SPIDER_MODULES = ['tiny.spiders']\n"
        "COMMANDS_MODULE = 'plt.commands'\n"
        f"ADDONS = {{**{ADDON!r}, 'tiny.addons.LateCheck': 5}}\n"
        "CONCURRENT_REQUESTS = 5\n"
        "TELNETCONSOLE_ENABLED = False\n"
        "REMOTE_CONTROL_ENABLED = False\n"
    )
    (tmp_path / "tiny" / "addons.py").write_text(
        "from plt.errors import ConfigError\n\n"
        "class LateCheck:\n"
        "    def update_settings(self, settings):\n"
        "        if settings.getbool('FAIL_LATE'):\n"
        "            raise ConfigError('FAIL_LATE is set')\n"
    )
    (tmp_path / "tiny" / "spiders" / "empty.py").write_text(
        "import scrapy\n\n"
        "class Empty(scrapy.Spider):\n"
        "    name = 'empty'\n\n"
        "    async def start(self):\n"
        "        self.logger.info('CR=%s', self.settings.getint('CONCURRENT_REQUESTS'))\n"
        "        return\n"
        "        yield\n\n"
        "class Bad(Empty):\n"
        "    name = 'bad'\n"
        "    custom_settings = {'PROFILE': '64kb'}\n"
    )
    return tmp_path


def scrapy_crawl(
    project: Path, *args: str, spider: str = "empty"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(PROJECT)])
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", spider, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_scrapy_crawl_with_unknown_profile_gives_one_line(tiny_project: Path) -> None:
    assert one_line(scrapy_crawl(tiny_project, "-s", "PROFILE=4gb")) == (
        "error: Unknown memory profile '4gb' (PROFILE setting); available profiles: "
        "256mb, 512mb, 1gb, 2gb; use PROFILE=none for no profile"
    )


@pytest.mark.parametrize(
    "setting",
    ["CONCURRENT_REQUESTS=0", "CONCURRENT_REQUESTS_PER_DOMAIN=-1", "CONCURRENT_ITEMS=x"],
)
def test_scrapy_crawl_with_bad_concurrency_gives_one_line(tiny_project: Path, setting: str) -> None:
    key = setting.split("=")[0]
    assert one_line(scrapy_crawl(tiny_project, "-s", setting)).startswith(f"error: {key} must be")


def test_scrapy_crawl_applies_the_profile(tiny_project: Path) -> None:
    result = scrapy_crawl(
        tiny_project, "-s", "PROFILE=256mb", "-s", "CONCURRENT_REQUESTS=50", "-s", "LOG_LEVEL=INFO"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Memory profile 256mb: PLT_MAX_CONCURRENT_REQUESTS=16," in result.stderr
    assert "CR=16" in result.stderr


@pytest.mark.parametrize("reactor", [None, "twisted.internet.selectreactor.SelectReactor"])
def test_scrapy_crawl_with_unknown_profile_in_custom_settings(
    tiny_project: Path, reactor: str | None
) -> None:
    args = ["-s", f"TWISTED_REACTOR={reactor}"] if reactor else []
    line = one_line(scrapy_crawl(tiny_project, *args, spider="bad"))
    assert line.startswith("error: Unknown memory profile '64kb' (PROFILE setting)")


@pytest.mark.parametrize("reactor", [None, "twisted.internet.selectreactor.SelectReactor"])
def test_scrapy_crawl_with_a_config_error_once_the_crawl_started(
    tiny_project: Path, reactor: str | None
) -> None:
    # An add-on's ConfigError from inside the crawl: one line last, status 1.
    args = ["-s", "FAIL_LATE=1", "-s", "LOG_LEVEL=WARNING"]
    if reactor:
        args += ["-s", f"TWISTED_REACTOR={reactor}"]
    result = scrapy_crawl(tiny_project, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "never retrieved" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: FAIL_LATE is set"
