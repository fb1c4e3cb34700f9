"""Start the bundled demo retailer when asked for: ``-s PLT_EMBEDDED_SHOP=1``.

``scrapy crawl product -s PLT_EMBEDDED_SHOP=1`` with SHOP_URL unset crawls a demo
retailer that this add-on starts on a free loopback port in a child process (so
its memory and CPU are not the crawler's) and stops when the engine stops. A job
directory remembers the port, so a resumed job finds its queued URLs served
again. Off by default: a production job that forgot SHOP_URL must stop with an
error, not fill its feed with demo products.
"""

from __future__ import annotations

import atexit
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

from plt.config import shop_config, uses_embedded_shop
from plt.shop.process import ShopProcess

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

PORT_FILE = "embedded-shop-port"
HITS_FILE = "embedded-shop-hits.json"  # a wall that lifts after N hits lifts across runs


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
        if not uses_embedded_shop(settings):
            return
        config = shop_config(settings)  # a ConfigError before anything is started
        jobdir = settings.get("JOBDIR")
        port_file = Path(jobdir) / PORT_FILE if jobdir else None
        port = int(port_file.read_text()) if port_file and port_file.exists() else 0
        if port and _answers(port):
            # The job's shop is still up: another live crawl of this job owns
            # it, and the job lock will say so.
            settings.set("SHOP_URL", f"http://127.0.0.1:{port}", priority="cmdline")
            return
        hits_file = port_file.with_name(HITS_FILE) if port_file else None
        self.shop = ShopProcess(config, port=port, hits_file=hits_file)
        self.shop.start()
        if port_file:
            port_file.parent.mkdir(parents=True, exist_ok=True)
            port_file.write_text(str(self.shop.port))
        logger.info("PLT_EMBEDDED_SHOP: crawling the demo retailer at %s", self.shop.url)
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
