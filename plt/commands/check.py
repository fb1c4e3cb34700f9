"""``scrapy check``: Scrapy's, with a bad setting reported on one line, exit status 1."""

from __future__ import annotations

from scrapy.commands.check import Command as ScrapyCheckCommand

from plt.commands.crawl import ConfigCheck


class Command(ConfigCheck, ScrapyCheckCommand):
    pass
