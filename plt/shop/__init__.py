"""The demo retailer: an aiohttp server that serves the retailer contract.

It makes the crawl, the tests and the benchmarks runnable anywhere. See
``python -m plt.shop --help``, ``scrapy shop --help`` and plt.shop.process.ShopProcess.
"""

from plt.shop.catalog import Catalog, Product, ShopConfig

__all__ = ["Catalog", "Product", "ShopConfig"]
