from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt.job.store import job_store
from plt.middlewares.deltafetch import ExportedDeltaFetch
from tests.helpers import spider_output


def run(mw, outputs) -> list:
    return spider_output(mw, HtmlResponse("http://shop/products?page=1", body=b""), outputs)


@pytest.fixture
def mw(tmp_path):
    crawler = get_crawler(settings_dict={"JOBDIR": str(tmp_path), "DELTAFETCH_ENABLED": True})
    crawler.stats.open_spider()
    state = job_store(crawler)
    state.open()
    (tmp_path / "items.jsonl").write_bytes(b'{"product_id": 7}\n')
    state.mark_exported(7, 18)
    return ExportedDeltaFetch.from_crawler(crawler)


def product(product_id: int, **meta) -> Request:
    return Request(
        f"http://shop/product/a-{product_id}",
        meta={"deltafetch_key": str(product_id), **meta},
    )


def test_exported_products_are_not_requested_again(mw):
    listing = Request("http://shop/products?page=2")
    out = run(mw, [product(7), product(8), listing, {"product_id": 9}])
    assert [getattr(o, "url", o) for o in out] == [
        "http://shop/product/a-8",
        "http://shop/products?page=2",
        {"product_id": 9},
    ]
    assert mw.stats.get_value("deltafetch/skipped") == 1


def test_yielding_an_item_marks_nothing(mw):
    run(mw, [{"product_id": 8}])
    assert run(mw, [product(8)])[0].url == "http://shop/product/a-8"


def test_per_request_opt_out(mw):
    assert len(run(mw, [product(7, deltafetch_enabled=False)])) == 1


def test_disabled_by_its_own_setting():
    crawler = get_crawler(settings_dict={"DELTAFETCH_ENABLED": False})
    with pytest.raises(NotConfigured):
        ExportedDeltaFetch.from_crawler(crawler)
