"""Memory-budget settings profiles and the add-on that applies them.

``PROFILE=512mb`` applies the UPPERCASE names of ``settings_profiles/profile_512mb.py``
at priority 25: above the project's settings.py (20) and Scrapy's defaults, below
spider ``custom_settings`` (30) and ``-s`` on the command line (40).

A profile says how much memory allows, not how hard to hit the retailer: its
PLT_MAX_CONCURRENT_REQUESTS is a ceiling. CONCURRENT_REQUESTS and
CONCURRENT_REQUESTS_PER_DOMAIN keep the user's values (or Scrapy's polite
defaults) and are only lowered to that ceiling.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from typing import TYPE_CHECKING, Any

from scrapy import signals

from plt.config import check_concurrency, get_int
from plt.errors import ConfigError

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
MAX_CONCURRENCY = "PLT_MAX_CONCURRENT_REQUESTS"
# (CONCURRENT_REQUESTS_PER_IP is deprecated since Scrapy 2.19 and not read.)
CAPPED = ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN")


class UnknownProfileError(ConfigError):
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


def cap_concurrency(settings: BaseSettings) -> dict[str, int]:
    """Lower each CAPPED setting above PLT_MAX_CONCURRENT_REQUESTS to it; raise none.

    Returns the lowered settings with the values they had. A cap of 0 is no cap.
    """
    cap = get_int(settings, MAX_CONCURRENCY)
    lowered: dict[str, int] = {}
    if cap <= 0:
        return lowered
    for key in CAPPED:
        value = get_int(settings, key)
        if value > cap:
            # At the value's own priority, so that it is replaced whoever set it.
            settings.set(key, cap, priority=settings.getpriority(key) or 0)
            lowered[key] = value
    return lowered


def concurrency_summary(settings: BaseSettings, lowered: dict[str, int]) -> str:
    parts = []
    for key in CAPPED:
        value = settings.getint(key)
        was = f" (lowered from {lowered[key]})" if key in lowered else ""
        parts.append(f"{key}={value}{was}")
    cap = settings.getint(MAX_CONCURRENCY)
    ceiling = f"; memory allows up to {cap} ({MAX_CONCURRENCY})" if cap > 0 else ""
    return ", ".join(parts) + ceiling


class ProfileAddon:
    """Scrapy add-on: apply the ``PROFILE`` setting's profile (default ``1gb``), then
    cap the concurrency to the memory ceiling."""

    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler
        self.profile: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        # Runs when the CrawlerProcess is built, before logging or any crawl exists;
        # `scrapy crawl` (plt.commands.crawl) runs it earlier still, to print the
        # error on one line.
        name = profile_name(settings)
        if name not in NO_PROFILE:
            load_profile(name)
        check_concurrency(settings)

    def update_settings(self, settings: BaseSettings) -> None:
        name = profile_name(settings)
        # Checked again: spider custom_settings may name a different profile.
        values = {} if name in NO_PROFILE else load_profile(name)
        overridden = []
        for key, value in values.items():
            # Settings.set() keeps a value of higher priority (spider, cmdline).
            settings.set(key, value, priority=PROFILE_PRIORITY)
            if settings.getpriority(key) != PROFILE_PRIORITY:
                overridden.append(key)
        check_concurrency(settings)
        lowered = cap_concurrency(settings)
        extra = {"crawler": self.crawler}
        if values:
            self.profile = name
            summary = ", ".join(
                f"{key}={settings[key]}" + (" (overridden)" if key in overridden else "")
                for key in values
            )
            logger.info(
                "Memory profile %(name)s: %(summary)s",
                {"name": name, "summary": summary},
                extra=extra,
            )
        else:
            logger.info("Memory profile: none", extra=extra)
        logger.info(
            "Concurrency: %(summary)s",
            {"summary": concurrency_summary(settings, lowered)},
            extra=extra,
        )
        if self.crawler is not None and values:
            self.crawler.signals.connect(self.engine_started, signal=signals.engine_started)

    def engine_started(self) -> None:
        assert self.crawler is not None
        self.crawler.stats.set_value("plt/profile", self.profile)
