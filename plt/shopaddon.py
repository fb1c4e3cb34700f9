"""Start the bundled demo retailer when no SHOP_URL is given.

``scrapy crawl product`` with SHOP_URL unset crawls a demo retailer that this
add-on starts on a free loopback port in a child process (so its memory and
CPU are not the crawler's) and stops when the engine stops. A job directory
remembers the port, so a resumed job finds its queued URLs served again.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

from plt.shop.catalog import ShopConfig
from plt.shop.process import ShopProcess

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

PORT_FILE = "embedded-shop-port"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class EmbeddedShopAddon:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.shop: ShopProcess | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EmbeddedShopAddon:
        return cls(crawler)

    def update_settings(self, settings: Settings) -> None:
        if settings.get("SHOP_URL") or not settings.getbool("PLT_EMBEDDED_SHOP"):
            return
        fields = {f.name for f in dataclasses.fields(ShopConfig)}
        options = settings.getdict("PLT_EMBEDDED_SHOP_OPTIONS")
        unknown = set(options) - fields
        if unknown:
            raise ValueError(
                f"PLT_EMBEDDED_SHOP_OPTIONS: unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(fields)}"
            )
        jobdir = settings.get("JOBDIR")
        port_file = Path(jobdir) / PORT_FILE if jobdir else None
        port = int(port_file.read_text()) if port_file and port_file.exists() else 0
        if port and _answers(port):
            # The job's shop is still up: another live crawl of this job owns
            # it, and the job lock will say so.
            settings.set("SHOP_URL", f"http://127.0.0.1:{port}", priority="cmdline")
            return
        self.shop = ShopProcess(ShopConfig(**options), port=port)
        self.shop.start()
        if port_file:
            port_file.parent.mkdir(parents=True, exist_ok=True)
            port_file.write_text(str(self.shop.port))
        logger.info("No SHOP_URL given: crawling the demo retailer at %s", self.shop.url)
        settings.set("SHOP_URL", self.shop.url, priority="cmdline")
        # spider_closed also fires when the spider closes before the engine
        # starts (a finished or damaged job), where engine_stopped does not;
        # atexit covers a crawl that never got that far.
        self.crawler.signals.connect(self.stop_shop, signal=signals.spider_closed)
        self.crawler.signals.connect(self.stop_shop, signal=signals.engine_stopped)
        atexit.register(self.stop_shop)

    def stop_shop(self) -> None:
        if self.shop is not None:
            self.shop.stop()
            self.shop = None
