"""The demo retailer's failures of real retailers (plt.shop.faults), each against a running shop."""

from __future__ import annotations

import argparse
import dataclasses
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from parsel import Selector

from plt.parsing import parse_listing, parse_product
from plt.shop.catalog import Catalog, ShopConfig
from plt.shop.cli import add_shop_arguments, check_args, config_from_args, config_to_argv
from plt.shop.options import EVERY_FAULT
from plt.shop.process import ShopProcess
from plt.shop.truth import expected_counts, expected_failures, expected_item
from tests.helpers import fetch

# Ten listing pages of ten, every other fault off: each test turns on the one it checks.
BASE = ShopConfig(
    products=100,
    per_page=10,
    page_bytes=5_000,
    transient_error_rate=0.0,
    withdrawn_rate=0.0,
    bad_stock_rate=0.0,
    no_subproducts_rate=0.0,
)
# Every new fault at once, at rates a 200-product shop shows each of them with.
ALL_FAULTS = dataclasses.replace(
    BASE,
    products=200,
    transient_error_rate=0.05,
    withdrawn_rate=0.03,
    listing_wall_rate=0.2,
    product_wall_rate=0.1,
    wall_listing_page=3,
    wall_hits=2,
    forbidden_rate=0.03,
    throttle_rate=0.1,
    retry_after_s=2,
    noncanonical_link_rate=0.1,
    redirect_loop_rate=0.1,
    listing_reset_rate=0.3,
    wrong_id_rate=0.1,
    bad_price_rate=0.1,
    stock_down_requests=5,
    truncated_rate=0.0,
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx comes back as an answer of its own


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def statuses(url: str, n: int) -> list[int]:
    return [fetch(url, opener=OPENER)[0] for _ in range(n)]


def shown_id(body: bytes) -> int:
    return int(Selector(text=body.decode()).css("main.product").attrib["data-product-id"])


def test_new_options_validate_round_trip_and_turn_off() -> None:
    config = dataclasses.replace(ALL_FAULTS, forbidden_ids="", seed=5)
    ids = [p.product_id for p in Catalog(config).products()]
    config = dataclasses.replace(config, forbidden_ids=f"{ids[4]}, {ids[7]}")
    assert config.forbidden_id_list == [ids[4], ids[7]]
    parser = argparse.ArgumentParser()
    add_shop_arguments(parser)
    assert config_from_args(parser.parse_args(config_to_argv(config))) == config
    off = config_from_args(parser.parse_args([*config_to_argv(config), "--no-faults"]))
    assert off == config.without_faults()
    assert off.forbidden_ids == "" and off.wall_listing_page == off.stock_down_requests == 0
    assert (off.wall_hits, off.retry_after_s) == (2, 2)  # shapes of faults, not faults
    for field in dataclasses.fields(ShopConfig):
        if field.metadata["fault"]:
            assert not getattr(off, field.name), field.name
    for bad in ("12,x", "-4", "1.5"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--forbidden-ids", bad])
    unlisted = ids[4] + 1 if ids[4] + 1 not in ids else ids[4] + 2
    for bad in (f"{ids[4]},abc", str(unlisted), "0"):
        with pytest.raises(ValueError, match="forbidden_ids"):
            dataclasses.replace(config, forbidden_ids=bad)
    with pytest.raises(ValueError, match="wall_listing_page"):
        dataclasses.replace(config, wall_listing_page=21)
    # On the command line, one usage line rather than a traceback.
    opts = parser.parse_args([*config_to_argv(config), f"--forbidden-ids={unlisted}"])
    assert check_args(opts) == (
        f"forbidden_ids: {unlisted} is not a listed product's id (the first are "
        + ", ".join(map(str, ids[:3]))
        + ")"
    )
    with pytest.raises(ValueError):
        dataclasses.replace(config, wall_hits=0)


def test_listing_wall_lifts_after_wall_hits() -> None:
    config = dataclasses.replace(BASE, wall_listing_page=2)
    with ShopProcess(config) as shop:
        status, _, body = fetch(f"{shop.url}/products?page=2", opener=OPENER)
        assert status == 403 and b"Access denied" in body
        assert statuses(f"{shop.url}/products?page=2", 3) == [403, 200, 200]
        assert statuses(f"{shop.url}/products?page=3", 1) == [200]
        stats = shop.stats()
    assert stats["listing_wall_403"] == 2 and stats["listing"] == 3
    config = dataclasses.replace(BASE, listing_wall_rate=1.0, wall_hits=3)
    with ShopProcess(config) as shop:
        for page in (1, 10):
            assert statuses(f"{shop.url}/products?page={page}", 4) == [403, 403, 403, 200]
        assert shop.stats()["listing_wall_403"] == 6


def test_product_wall_lifts_after_wall_hits() -> None:
    config = dataclasses.replace(BASE, product_wall_rate=0.3)
    catalog = Catalog(config)
    walled = [
        p for p in catalog.products() if catalog.has_fault("wall", "product", p.product_id, 0.3)
    ]
    assert 10 < len(walled) < 50
    with ShopProcess(config) as shop:
        # Each resource is walled for its own first hits, whatever the order of requests.
        for product in reversed(list(catalog.products())):
            expected = [403, 403, 200] if product in walled else [200, 200, 200]
            assert statuses(shop.url + product.path, 3) == expected
        stats = shop.stats()
    assert stats["product_wall_403"] == 2 * len(walled)


def test_forbidden_products_always_answer_403_and_are_expected_failures(tmp_path: Path) -> None:
    catalog = Catalog(BASE)
    target = catalog.product_at(5)
    config = dataclasses.replace(BASE, forbidden_ids=str(target.product_id), forbidden_rate=0.05)
    catalog = Catalog(config)
    forbidden = [p for p in catalog.products() if catalog.is_forbidden(p)]
    assert target in forbidden and len(forbidden) > 2
    with ShopProcess(config) as shop:
        for product in forbidden:
            assert statuses(shop.url + product.path, 4) == [403] * 4
        allowed = next(p for p in catalog.products() if p not in forbidden)
        assert statuses(shop.url + allowed.path, 1) == [200]
        stats = shop.stats()
        truth = shop.write_ground_truth(tmp_path / "truth.jsonl")
        failures = shop.write_expected_failures(tmp_path / "failures.jsonl")
    assert stats["forbidden_403"] == 4 * len(forbidden)
    items = [json.loads(line) for line in truth.read_text().splitlines()]
    gone = [json.loads(line) for line in failures.read_text().splitlines()]
    assert {i["product_id"] for i in items} == {p.product_id for p in catalog.products()} - {
        p.product_id for p in forbidden
    }
    assert gone == [
        {"product_id": p.product_id, "url": shop.url + p.path, "reason": "forbidden"}
        for p in forbidden
    ]
    assert expected_counts(catalog)["forbidden"] == len(forbidden)
    assert expected_counts(catalog)["items"] == len(items)


def test_a_forbidden_product_that_is_also_withdrawn_is_forbidden() -> None:
    config = dataclasses.replace(BASE, withdrawn_rate=0.2)
    withdrawn = next(p for p in Catalog(config).products() if p.withdrawn)
    catalog = Catalog(dataclasses.replace(config, forbidden_ids=str(withdrawn.product_id)))
    assert catalog.is_forbidden(withdrawn)
    assert [f["product_id"] for f in expected_failures(catalog, "http://x")] == [
        withdrawn.product_id
    ]
    summary = expected_counts(catalog)
    assert summary["withdrawn"] + summary["forbidden"] + summary["items"] == 100


def test_throttled_first_hit_answers_429_with_retry_after() -> None:
    config = dataclasses.replace(BASE, throttle_rate=1.0, retry_after_s=7)
    product = Catalog(config).product_at(2)
    with ShopProcess(config) as shop:
        for path in ("/products?page=4", product.path, f"/api/stock/{product.col_nums[0]}"):
            status, headers, _ = fetch(shop.url + path, opener=OPENER)
            assert (status, headers["Retry-After"]) == (429, "7"), path
            assert statuses(shop.url + path, 2) == [200, 200]
        assert shop.stats()["throttled_429"] == 3
    # With a transient 503 too, the 429 comes first, then the 503, each once.
    config = dataclasses.replace(config, transient_error_rate=1.0)
    with ShopProcess(config) as shop:
        assert statuses(shop.url + product.path, 3) == [429, 503, 200]


def test_non_canonical_links_redirect_to_the_canonical_url_every_time() -> None:
    config = dataclasses.replace(BASE, noncanonical_link_rate=0.3)
    catalog = Catalog(config)
    with ShopProcess(config) as shop:
        status, _, body = fetch(f"{shop.url}/products?page=1", opener=OPENER)
        listing = parse_listing(Selector(text=body.decode()))
        products = catalog.listing_page(1)
        assert listing.product_ids == [p.product_id for p in products]
        moved = [
            (href, p)
            for href, p in zip(listing.product_urls, products, strict=True)
            if href != p.path
        ]
        assert moved and len(moved) < len(products)
        for href, product in moved:
            assert href == f"/product/item-{product.product_id}"
            for _ in range(3):
                status, headers, _ = fetch(shop.url + href, opener=OPENER)
                assert (status, headers["Location"]) == (301, product.path)
            assert statuses(urljoin(shop.url + href, headers["Location"]), 1) == [200]
        assert shop.stats()["canonical_301"] == 3 * len(moved)


def test_redirect_loop_for_the_first_wall_hits() -> None:
    config = dataclasses.replace(BASE, redirect_loop_rate=1.0, wall_hits=2)
    product = Catalog(config).product_at(3)
    with ShopProcess(config) as shop:
        for _ in range(2):
            status, headers, _ = fetch(shop.url + product.path, opener=OPENER)
            assert (status, headers["Location"]) == (302, f"/product/item-{product.product_id}")
            status, headers, _ = fetch(shop.url + headers["Location"], opener=OPENER)
            assert (status, headers["Location"]) == (301, product.path)  # A -> B -> A
        status, _, body = fetch(shop.url + product.path, opener=OPENER)
        assert status == 200 and shown_id(body) == product.product_id
        stats = shop.stats()
    assert stats["redirect_loop_302"] == 2 and stats["canonical_301"] == 2


def test_a_walled_product_meets_no_redirect_loop_after_the_wall() -> None:
    # Both faults outlast a run: stacked, they would use up a crawl's attempts.
    config = dataclasses.replace(BASE, product_wall_rate=1.0, redirect_loop_rate=1.0, wall_hits=1)
    product = Catalog(config).product_at(3)
    with ShopProcess(config) as shop:
        assert fetch(shop.url + product.path, opener=OPENER)[0] == 403
        status, _, body = fetch(shop.url + product.path, opener=OPENER)
        assert status == 200 and shown_id(body) == product.product_id
        assert shop.stats()["redirect_loop_302"] == 0


def test_a_listing_page_first_redirects_to_page_1() -> None:
    config = dataclasses.replace(BASE, listing_reset_rate=1.0)
    with ShopProcess(config) as shop:
        assert statuses(f"{shop.url}/products?page=1", 2) == [200, 200]
        for page in (2, 10):
            status, headers, _ = fetch(f"{shop.url}/products?page={page}", opener=OPENER)
            assert (status, headers["Location"]) == (302, "/products?page=1")
            assert statuses(f"{shop.url}/products?page={page}", 2) == [200, 200]
        assert shop.stats()["listing_reset_302"] == 2


def test_wrong_id_page_shows_the_next_exportable_product_once() -> None:
    config = dataclasses.replace(BASE, wrong_id_rate=1.0, withdrawn_rate=0.3)
    catalog = Catalog(config)
    product = next(
        p
        for p in catalog.products()
        if not p.withdrawn and catalog.product_at(p.index + 1).withdrawn
    )
    other = catalog.shown_instead(product)
    assert other is not None and other.index > product.index + 1 and not other.withdrawn
    with ShopProcess(config) as shop:
        status, _, first = fetch(shop.url + product.path, opener=OPENER)
        status2, _, second = fetch(shop.url + product.path, opener=OPENER)
        stats = shop.stats()
    assert status == status2 == 200
    url = shop.url + product.path
    item = parse_product(Selector(text=first.decode()), url)
    expected = expected_item(catalog, other, shop.url)
    assert item == {**{k: expected[k] for k in item}, "url": url}  # another product's whole block
    assert Selector(text=first.decode()).css("link[rel=canonical]::attr(href)").get() == other.path
    assert shown_id(second) == product.product_id
    assert stats["wrong_id"] == 1


def test_bad_price_makes_the_crawlers_parsing_raise_once() -> None:
    config = dataclasses.replace(BASE, bad_price_rate=1.0, sold_out_rate=0.5)
    catalog = Catalog(config)
    sold_out = next(p for p in catalog.products() if p.sold_out)
    in_stock = next(p for p in catalog.products() if not p.sold_out)
    with ShopProcess(config) as shop:
        for product in (sold_out, in_stock):
            url = shop.url + product.path
            _, _, body = fetch(url, opener=OPENER)
            assert b'<span class="price-now">&pound;,</span>' in body
            with pytest.raises(ValueError):
                parse_product(Selector(text=body.decode()), url)
            _, _, body = fetch(url, opener=OPENER)
            item = parse_product(Selector(text=body.decode()), url)
            assert (
                item["current_price"] == expected_item(catalog, product, shop.url)["current_price"]
            )
        assert shop.stats()["bad_price"] == 2


def test_stock_api_down_for_its_first_requests() -> None:
    config = dataclasses.replace(BASE, stock_down_requests=3)
    product = Catalog(config).product_at(0)
    with ShopProcess(config) as shop:
        good, unknown = f"{shop.url}/api/stock/{product.col_nums[0]}", f"{shop.url}/api/stock/5"
        assert [fetch(url, opener=OPENER)[0] for url in (good, unknown, good, unknown, good)] == [
            503, 503, 503, 404, 200,
        ]  # fmt: skip
        assert statuses(f"{shop.url}/products?page=1", 1) == [200]  # the shop itself is up
        stats = shop.stats()
    assert stats["stock_down_503"] == 3 and stats["stock"] == 1


def test_only_the_faults_the_default_crawl_expects_are_on_by_default() -> None:
    on = {f.name for f in dataclasses.fields(ShopConfig) if f.metadata["fault"] and f.default}
    assert on == {
        "transient_error_rate", "withdrawn_rate", "missing_active_rate", "bad_stock_rate",
        "no_subproducts_rate",
    }  # fmt: skip


def test_every_fault_preset_shows_each_fault_in_a_full_size_shop() -> None:
    config = dataclasses.replace(ShopConfig(), **EVERY_FAULT)
    catalog = Catalog(config)
    faults = {f.name for f in dataclasses.fields(ShopConfig) if f.metadata["fault"]}
    assert set(EVERY_FAULT) <= faults
    draws = {  # the seeded draw behind each rate, and what it draws over
        "listing_wall_rate": ("wall", "listing", range(1, catalog.pages + 1)),
        "listing_reset_rate": ("reset", "listing", range(2, catalog.pages + 1)),
        **{
            name: (fault, "product", [p.product_id for p in catalog.products()])
            for name, fault in (
                ("truncated_rate", "truncated"), ("product_wall_rate", "wall"),
                ("forbidden_rate", "forbidden"), ("throttle_rate", "throttle"),
                ("noncanonical_link_rate", "noncanonical"), ("redirect_loop_rate", "loop"),
                ("wrong_id_rate", "wrong_id"), ("bad_price_rate", "bad_price"),
            )
        },
    }  # fmt: skip
    assert set(draws) | {"stock_down_requests"} == set(EVERY_FAULT)
    for name, (fault, kind, keys) in draws.items():
        rate = getattr(config, name)
        chosen = sum(catalog.has_fault(fault, kind, key, rate) for key in keys)
        assert 0.5 * rate * len(keys) < chosen < 1.5 * rate * len(keys), name
    assert expected_counts(catalog)["forbidden"] > 0


def _get_until_ok(url: str, tries: int = 12) -> tuple[int, str, bytes]:
    """A patient client: retries what may pass, follows redirects; (status, final URL, body)."""
    status, body = 0, b""
    for _ in range(tries):
        status, headers, body = fetch(url, opener=OPENER)
        if status in (301, 302):
            url = urljoin(url, headers["Location"])
        elif status not in (403, 429, 503):
            break
    return status, url, body


def test_a_patient_crawl_with_every_fault_gets_the_ground_truth(tmp_path: Path) -> None:
    """Retrying what passes gives exactly the ground truth and the expected failures."""
    catalog = Catalog(ALL_FAULTS)
    with ShopProcess(ALL_FAULTS) as shop:
        items, failures, page = [], [], 1
        while page:
            url = f"{shop.url}/products?page={page}"
            status, final, body = _get_until_ok(url)
            while final != url:  # sent back to page 1: ask again for the page wanted
                status, final, body = _get_until_ok(url)
            assert status == 200
            listing = parse_listing(Selector(text=body.decode()))
            for href, pid in zip(listing.product_urls, listing.product_ids, strict=True):
                item = None
                for _ in range(4):  # another product's page, or one that does not parse
                    status, final, body = _get_until_ok(urljoin(url, href))
                    if status != 200:
                        break
                    try:
                        item = parse_product(Selector(text=body.decode()), final)
                    except ValueError:
                        continue
                    if item["product_id"] == pid:
                        break
                if status == 403:
                    failures.append({"product_id": pid, "url": final, "reason": "forbidden"})
                if status != 200:
                    continue
                assert item is not None and item["product_id"] == pid
                col = item["active_col_num"] or item["all_col_nums"][0]
                status, _, stock = _get_until_ok(f"{shop.url}/api/stock/{col}")
                try:
                    item["stock_jsons"] = json.loads(stock)["subProducts"]
                except (ValueError, KeyError):
                    item["stock_jsons"] = None
                items.append(item)
            page = page + 1 if listing.has_next else 0
        stats = shop.stats()
        truth = shop.write_ground_truth(tmp_path / "truth.jsonl")
        expected_failures = shop.write_expected_failures(tmp_path / "failures.jsonl")
    assert items == [json.loads(line) for line in truth.read_text().splitlines()]
    assert failures == [json.loads(line) for line in expected_failures.read_text().splitlines()]
    assert failures and len(items) == expected_counts(catalog)["items"]
    for counter in (
        "listing_wall_403", "product_wall_403", "forbidden_403", "throttled_429", "canonical_301",
        "redirect_loop_302", "listing_reset_302", "wrong_id", "bad_price", "stock_down_503",
        "transient_503",
    ):  # fmt: skip
        assert stats[counter] > 0, counter


def test_hits_file_keeps_the_request_counts_across_restarts(tmp_path: Path) -> None:
    config = dataclasses.replace(BASE, wall_listing_page=2, wall_hits=3, stock_down_requests=2)
    hits = tmp_path / "hits.json"
    url = "{}/products?page=2"
    with ShopProcess(config, hits_file=hits) as shop:
        assert statuses(url.format(shop.url), 2) == [403, 403]
        assert statuses(f"{shop.url}/api/stock/5", 1) == [503]
    assert hits.exists()
    with ShopProcess(config, hits_file=hits) as shop:
        assert statuses(url.format(shop.url), 2) == [403, 200]
        assert statuses(f"{shop.url}/api/stock/5", 2) == [503, 404]
    # The counts of a shop with other options are not this one's.
    other = dataclasses.replace(config, seed=2)
    with ShopProcess(other, hits_file=hits) as shop:
        assert statuses(url.format(shop.url), 1) == [403]
    hits.write_text("{not json")
    with ShopProcess(config, hits_file=hits) as shop:
        assert statuses(url.format(shop.url), 1) == [403]
