"""Memory-budget settings profiles and the add-on that applies them.

``PROFILE=512mb`` applies the UPPERCASE names of ``settings_profiles/profile_512mb.py``
at priority 25: above the project's settings.py (20) and Scrapy's defaults, below
spider ``custom_settings`` (30) and ``-s`` on the command line (40).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import re
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import UsageError

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

PROFILES_PACKAGE = "settings_profiles"
MODULE_PREFIX = "profile_"
DEFAULT_PROFILE = "1gb"
PROFILE_PRIORITY = 25
NO_PROFILE = frozenset({"", "none"})
_UNITS = {"kb": 1 / 1024, "mb": 1, "gb": 1024, "tb": 1024 * 1024}


class UnknownProfileError(UsageError):
    """PROFILE names no module in the profiles package."""


def _budget_order(name: str) -> tuple[float, str]:
    # "256mb" < "512mb" < "1gb" < "2gb"; anything else after them, by name.
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgt]b)", name)
    if match is None:
        return float("inf"), name
    return float(match[1]) * _UNITS[match[2]], name


def available_profiles(package: str = PROFILES_PACKAGE) -> list[str]:
    """Profile names in ``package``, smallest budget first.

    Uses pkgutil on the imported package rather than the file system so that it
    also works when the project is installed as a zipped egg.
    """
    pkg = importlib.import_module(package)
    names = (
        info.name.removeprefix(MODULE_PREFIX)
        for info in pkgutil.iter_modules(pkg.__path__)
        if info.name.startswith(MODULE_PREFIX) and not info.ispkg
    )
    return sorted(names, key=_budget_order)


def normalize_profile_name(name: Any) -> str:
    return str(name if name is not None else "").strip().lower()


def profile_name(settings: BaseSettings) -> str:
    """The PROFILE setting, normalized; unset means DEFAULT_PROFILE, None means none."""
    if "PROFILE" not in settings:
        return DEFAULT_PROFILE
    # Not settings.get(), which would turn an explicit None into the default.
    return normalize_profile_name(settings["PROFILE"])


def load_profile(name: str, package: str = PROFILES_PACKAGE) -> dict[str, Any]:
    """The settings of profile ``name``: its module's public UPPERCASE names."""
    name = normalize_profile_name(name)
    available = available_profiles(package)
    if name not in available:
        raise UnknownProfileError(
            f"Unknown memory profile {name!r} (PROFILE setting); "
            f"available profiles: {', '.join(available)}; use PROFILE=none for no profile"
        )
    module = importlib.import_module(f"{package}.{MODULE_PREFIX}{name}")
    return {
        key: value
        for key, value in vars(module).items()
        if key.isupper() and not key.startswith("_")
    }


def _exit_line(exc: UnknownProfileError) -> SystemExit:
    # SystemExit prints its message alone on stderr and exits with status 1.
    return SystemExit(f"error: {exc}")


def _in_asyncio_task() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no running event loop
        return False


class ProfileAddon:
    """Scrapy add-on: apply the ``PROFILE`` setting's profile (default ``1gb``)."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler
        self.profile: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        # Runs synchronously when the CrawlerProcess is built, before logging, reactor
        # or crawl task exist: an unknown PROFILE from settings.py or -s ends `scrapy
        # crawl` here with one line. A UsageError would not reach scrapy.cmdline's
        # handler at this point and would print a traceback.
        name = profile_name(settings)
        if name not in NO_PROFILE:
            try:
                load_profile(name)
            except UnknownProfileError as exc:
                raise _exit_line(exc) from None

    def update_settings(self, settings: BaseSettings) -> None:
        name = profile_name(settings)
        if name in NO_PROFILE:
            logger.info("Memory profile: none", extra={"crawler": self.crawler})
            return
        try:
            # Checked again: spider custom_settings may name a different profile.
            values = load_profile(name)
        except UnknownProfileError as exc:
            # In AsyncCrawlerProcess's crawl task asyncio lets SystemExit end the
            # process cleanly; a Deferred (Twisted reactor, CrawlerRunner) would swallow
            # it and exit 0, so there the error stays an exception and fails the crawl.
            if _in_asyncio_task():
                raise _exit_line(exc) from None
            raise
        overridden = []
        for key, value in values.items():
            # Settings.set() keeps a value of higher priority (spider, cmdline).
            settings.set(key, value, priority=PROFILE_PRIORITY)
            if settings.getpriority(key) != PROFILE_PRIORITY:
                overridden.append(key)
        self.profile = name
        summary = ", ".join(
            f"{key}={settings[key]}" + (" (overridden)" if key in overridden else "")
            for key in values
        )
        logger.info(
            "Memory profile %(name)s: %(summary)s",
            {"name": name, "summary": summary},
            extra={"crawler": self.crawler},
        )
        if self.crawler is not None:
            self.crawler.signals.connect(self.engine_started, signal=signals.engine_started)

    def engine_started(self) -> None:
        assert self.crawler is not None
        self.crawler.stats.set_value("plt/profile", self.profile)
