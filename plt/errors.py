"""Errors of PLT's configuration.

``ConfigError`` is Scrapy's ``UsageError``, so a program that embeds the crawler
gets an ordinary exception (never ``SystemExit``), and ``scrapy crawl`` (see
plt.commands.crawl) prints its message alone on one line and exits with status 1.
"""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import UsageError


class ConfigError(UsageError):
    """A setting that the crawl cannot run with; the message names it and the fix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("print_help", False)
        super().__init__(*args, **kwargs)
