from __future__ import annotations

import pickle
import sys

import pytest
import ujson
from scrapy import Request
from scrapy.http import FormRequest, JsonRequest
from scrapy.utils.request import request_from_dict
from scrapy.utils.test import get_crawler

from plt.job.requestcodec import (
    LEASE_KEY,
    UndecodableRequest,
    request_from_json,
    request_to_json,
)
from plt.spiders.product import ProductSpider

EVIL = """
from pathlib import Path
Path(__file__).with_name("imported").write_text("code ran")
class X:
    attributes = ("url",)
    def __init__(self, **kwargs):
        pass
"""


@pytest.fixture
def spider() -> ProductSpider:
    crawler = get_crawler(ProductSpider, {"SHOP_URL": "http://shop.test"})
    return ProductSpider.from_crawler(crawler)


@pytest.fixture
def stored(spider):
    """A product request as the scheduler stores it, as a dict to tamper with."""
    request = spider.product_request("http://shop.test/product/a-7", 7)
    return ujson.loads(request_to_json(request, spider))


def test_scrapy_request_classes_round_trip(spider):
    form = FormRequest("http://shop.test/f", formdata={"a": "1"}, callback=spider.parse_listing)
    json_request = JsonRequest("http://shop.test/j", data={"a": 1}, errback=spider.stock_failed)
    for request in (form, json_request):
        request.meta[LEASE_KEY] = 3
        back = request_from_json(request_to_json(request, spider), spider)
        assert type(back) is type(request)
        assert back.body == request.body
        assert LEASE_KEY not in back.meta  # one run's lease is never stored


def test_a_class_naming_a_module_is_refused_and_never_imported(
    spider, stored, tmp_path, monkeypatch
):
    (tmp_path / "plt_evil_codec.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))
    stored["_class"] = "plt_evil_codec.X"
    with pytest.raises(UndecodableRequest, match="not one of Scrapy's"):
        request_from_json(ujson.dumps(stored), spider)
    assert "plt_evil_codec" not in sys.modules
    assert not (tmp_path / "imported").exists()
    # The same row through Scrapy's request_from_dict runs the module's code.
    stored["_class"] = "plt_evil_codec_control.X"
    (tmp_path / "plt_evil_codec_control.py").write_text(EVIL)
    request_from_dict(stored, spider=spider)
    assert (tmp_path / "imported").exists()
    monkeypatch.delitem(sys.modules, "plt_evil_codec_control")


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "crawler.engine.close_spider_async",
        "__init__",
        "__class__",
        "name",  # an attribute, not a method
        "from_crawler",  # bound to the class, not to the spider
        "close",  # a static method
        "parse_old",  # renamed since it was stored
        ["parse_product"],
        "",
    ],
)
def test_only_the_spiders_own_methods_are_callbacks(spider, stored, name):
    stored["callback"] = name
    with pytest.raises(UndecodableRequest, match="callback"):
        request_from_json(ujson.dumps(stored), spider)
    stored["callback"] = "parse_product"
    stored["errback"] = name
    with pytest.raises(UndecodableRequest, match="callback"):
        request_from_json(ujson.dumps(stored), spider)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("{not json", "not JSON"),
        (pickle.dumps(Request("http://shop.test/")), "binary data"),
        (pickle.dumps({"url": "x"}, protocol=0).decode("latin-1"), "not JSON"),
        ("[1, 2]", "no url"),
        ('{"url": 7}', "no url"),
        (None, "no request stored"),
        ('{"url": "http://shop.test/", "headers": {"A": "b"}}', "invalid request fields"),
        ('{"url": "no scheme"}', "invalid request fields"),
        ('{"url": "http://shop.test/", "priority": "high"}', "invalid request fields"),
    ],
)
def test_garbage_is_undecodable_not_an_exception_of_its_own(spider, data, words):
    with pytest.raises(UndecodableRequest, match=words):
        request_from_json(data, spider)


def test_referrer_policy_may_only_be_a_standard_name(spider, stored):
    stored["meta"]["referrer_policy"] = "same-origin"
    assert request_from_json(ujson.dumps(stored), spider).meta["referrer_policy"] == "same-origin"
    # RefererMiddleware would import a dotted path.
    stored["meta"]["referrer_policy"] = "plt_evil_codec.Policy"
    with pytest.raises(UndecodableRequest, match="referrer_policy"):
        request_from_json(ujson.dumps(stored), spider)
