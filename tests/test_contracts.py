from __future__ import annotations

import subprocess
import sys

import pytest
from scrapy.exceptions import ContractFail
from scrapy.utils.test import get_crawler

from plt.contracts import ListingPageContract, PendingItemContract, ShopUrlContract
from plt.spiders.product import ProductSpider
from tests.conftest import PROJECT, crawl_env


@pytest.fixture
def spider():
    crawler = get_crawler(ProductSpider, {"SHOP_URL": "http://shop.test"})
    spider = ProductSpider.from_crawler(crawler)
    spider.job.open()
    return spider


def test_scrapy_check_passes_against_the_embedded_demo_retailer():
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "check", "product", "-v", "-s", "PLT_EMBEDDED_SHOP=1"],
        cwd=PROJECT,
        env=crawl_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ran 8 contracts" in proc.stderr
    for callback in ("parse_listing", "parse_product", "parse_stock"):
        assert f"[product] {callback}" in proc.stderr


def test_shop_url_resolves_against_the_setting(spider):
    contract = ShopUrlContract(spider.parse_listing, "/products?page=1")
    assert contract.adjust_request_args({})["url"] == "http://shop.test/products?page=1"


def test_listing_contract_rejects_items_in_requests(spider):
    contract = ListingPageContract(spider.parse_listing)
    good = [spider.product_request("http://shop.test/product/a-1", 1), spider.listing_request(2, 9)]
    contract.post_process(good)
    fat = spider.product_request("http://shop.test/product/a-1", 1)
    fat.cb_kwargs["item"] = {"name": "x"}
    with pytest.raises(ContractFail, match="only ids"):
        contract.post_process([fat, spider.listing_request(2, 9)])
    with pytest.raises(ContractFail, match="outrank"):
        low = spider.product_request("http://shop.test/product/a-1", 1).replace(priority=-5)
        contract.post_process([low, spider.listing_request(2, 9)])


def test_pending_item_contract_needs_the_partial_item(spider):
    contract = PendingItemContract(spider.parse_product)
    stock = spider.stock_request(5, 50)
    with pytest.raises(ContractFail, match="no partial item"):
        contract.post_process([stock])
    spider.job.put_pending(5, {"product_id": 5})
    contract.post_process([stock])


def test_scrapy_check_without_a_retailer_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "check", "product"],
        cwd=PROJECT,
        env=crawl_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: SHOP_URL is not set: name the retailer with -s SHOP_URL=https://retailer.example, "
        "or crawl the bundled demo retailer with -s PLT_EMBEDDED_SHOP=1"
    ]
