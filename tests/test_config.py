"""The checks of a crawl's settings: one ConfigError naming the setting."""

from __future__ import annotations

import pytest
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from plt.config import check_concurrency, check_retailer, check_url, shop_config
from plt.errors import ConfigError
from plt.shop.catalog import Catalog, ShopConfig


def test_config_error_is_scrapys_usage_error_without_help():
    exc = ConfigError("SHOP_URL is wrong")
    assert isinstance(exc, UsageError)
    assert not exc.print_help
    assert str(exc) == "SHOP_URL is wrong"


@pytest.mark.parametrize(
    "url", ["https://retailer.example", "http://127.0.0.1:8800", "https://r.example/shop/"]
)
def test_good_urls(url):
    check_url(Settings({"SHOP_URL": url}), "SHOP_URL")


def test_unset_url_is_not_checked():
    check_url(Settings(), "STOCK_API_URL")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "shop.example",
            "SHOP_URL 'shop.example' is not an http(s) URL with a host, "
            "e.g. https://retailer.example (did you mean https://shop.example?)",
        ),
        ("/products", "SHOP_URL '/products' is not an http(s) URL with a host"),
        ("http://", "SHOP_URL 'http://' is not an http(s) URL with a host"),
        ("ftp://shop.example", "SHOP_URL 'ftp://shop.example' is not an http(s) URL"),
        ("http://shop.example:port", "SHOP_URL 'http://shop.example:port' is not a valid URL"),
        ("http://[::1", "SHOP_URL 'http://[::1' is not a valid URL"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(ConfigError) as excinfo:
        check_url(Settings({"SHOP_URL": url}), "SHOP_URL")
    assert str(excinfo.value).startswith(message)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CONCURRENT_REQUESTS": 0}, "CONCURRENT_REQUESTS must be positive, got 0"),
        ({"CONCURRENT_REQUESTS": "-3"}, "CONCURRENT_REQUESTS must be positive, got -3"),
        (
            {"CONCURRENT_REQUESTS_PER_DOMAIN": 0},
            "CONCURRENT_REQUESTS_PER_DOMAIN must be positive, got 0",
        ),
        ({"CONCURRENT_ITEMS": 0}, "CONCURRENT_ITEMS must be positive, got 0"),
        ({"CONCURRENT_REQUESTS": "many"}, "CONCURRENT_REQUESTS must be a whole number, got 'many'"),
        (
            {"PLT_MAX_CONCURRENT_REQUESTS": -1},
            "PLT_MAX_CONCURRENT_REQUESTS must be 0 or more, got -1",
        ),
    ],
)
def test_bad_concurrency(values, message):
    with pytest.raises(ConfigError) as excinfo:
        check_concurrency(Settings(values))
    assert str(excinfo.value) == message


def test_scrapys_default_concurrency_is_fine():
    check_concurrency(Settings({"PLT_MAX_CONCURRENT_REQUESTS": 0}))


def test_shop_options_from_json_text_or_a_dict():
    expected = ShopConfig(products=5, latency_ms=2)
    for options in ('{"products": 5, "latency_ms": 2}', {"products": 5, "latency_ms": 2}):
        assert shop_config(Settings({"PLT_EMBEDDED_SHOP_OPTIONS": options})) == expected
    assert shop_config(Settings()) == ShopConfig()
    listed = Catalog(ShopConfig()).product_id_at(3)
    faults = {"wall_listing_page": 2, "forbidden_ids": str(listed), "throttle_rate": 0.5}
    assert shop_config(Settings({"PLT_EMBEDDED_SHOP_OPTIONS": faults})) == ShopConfig(**faults)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"products": 5', "PLT_EMBEDDED_SHOP_OPTIONS is not a JSON object (Expecting"),
        ("[1, 2]", "PLT_EMBEDDED_SHOP_OPTIONS is not a JSON object"),
        ('{"product": 5}', "PLT_EMBEDDED_SHOP_OPTIONS: unknown option(s) product; known: products"),
        ('{"products": "5"}', "PLT_EMBEDDED_SHOP_OPTIONS: products must be a whole number"),
        ('{"products": true}', "PLT_EMBEDDED_SHOP_OPTIONS: products must be a whole number"),
        ('{"products": 1.5}', "PLT_EMBEDDED_SHOP_OPTIONS: products must be a whole number"),
        ('{"latency_ms": "x"}', "PLT_EMBEDDED_SHOP_OPTIONS: latency_ms must be a number"),
        ('{"products": -1}', "PLT_EMBEDDED_SHOP_OPTIONS: products must be >= 0, got -1"),
        ('{"withdrawn_rate": 2}', "PLT_EMBEDDED_SHOP_OPTIONS: withdrawn_rate must be within"),
        ('{"forbidden_ids": [4]}', "PLT_EMBEDDED_SHOP_OPTIONS: forbidden_ids must be a string"),
        ('{"forbidden_ids": "4,x"}', "PLT_EMBEDDED_SHOP_OPTIONS: forbidden_ids: not a product id"),
    ],
)
def test_bad_shop_options(options, message):
    with pytest.raises(ConfigError) as excinfo:
        shop_config(Settings({"PLT_EMBEDDED_SHOP_OPTIONS": options}))
    assert str(excinfo.value).startswith(message)


def test_retailer_is_required():
    with pytest.raises(ConfigError) as excinfo:
        check_retailer(Settings())
    assert str(excinfo.value) == (
        "SHOP_URL is not set: name the retailer with -s SHOP_URL=https://retailer.example, "
        "or crawl the bundled demo retailer with -s PLT_EMBEDDED_SHOP=1"
    )


def test_demo_retailer_only_when_asked_for():
    check_retailer(Settings({"PLT_EMBEDDED_SHOP": "1"}))
    with pytest.raises(ConfigError, match="unknown option"):
        check_retailer(Settings({"PLT_EMBEDDED_SHOP": "1", "PLT_EMBEDDED_SHOP_OPTIONS": {"x": 1}}))
    with pytest.raises(ConfigError, match="PLT_EMBEDDED_SHOP must be 1 or 0"):
        check_retailer(Settings({"PLT_EMBEDDED_SHOP": "maybe"}))


def test_shop_url_wins_over_the_demo_retailer_and_its_options():
    settings = Settings(
        {
            "SHOP_URL": "https://r.example",
            "PLT_EMBEDDED_SHOP": True,
            "PLT_EMBEDDED_SHOP_OPTIONS": "{",
        }
    )
    check_retailer(settings)


def test_stock_api_url_is_checked_too():
    with pytest.raises(ConfigError, match=r"STOCK_API_URL 'stock\.example'"):
        check_retailer(
            Settings({"SHOP_URL": "https://r.example", "STOCK_API_URL": "stock.example"})
        )
