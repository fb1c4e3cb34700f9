"""``scrapy shop``: serve the demo retailer, with the options of ``python -m plt.shop``."""

from __future__ import annotations

import argparse
import logging
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from plt.shop import cli

logger = logging.getLogger(__name__)


class Command(ScrapyCommand):
    requires_project = False
    # The shop runs its own asyncio loop; no crawler process or reactor is needed.
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": True}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Serve the demo retailer on a loopback port"

    def long_desc(self) -> str:
        return cli.DESCRIPTION

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        cli.add_shop_arguments(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        error = cli.check_args(opts)
        if error:
            raise UsageError(error)
        assert self.settings is not None
        if self.settings.getbool("LOG_ENABLED"):
            cli.configure_logging(self.settings.get("LOG_LEVEL", "INFO"))
        self.exitcode = cli.run(opts)
