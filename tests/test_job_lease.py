from __future__ import annotations

from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt.job.lease import LeaseMiddleware
from plt.job.scheduler import LEASE_KEY
from plt.job.sqlite import SQLiteJobStore
from plt.job.store import job_store
from tests.helpers import collect, spider_output


class RecordingEngine:
    def __init__(self, state: SQLiteJobStore) -> None:
        self.state = state
        self.crawled: list[tuple[str, int]] = []

    def crawl(self, request: Request) -> None:
        # What the lease looked like when each request reached the engine.
        self.crawled.append((request.url, self.state.leased))


def setup(tmp_path):
    crawler = get_crawler(settings_dict={"JOBDIR": str(tmp_path)})
    state = job_store(crawler)
    state.open()
    state.add_request("parent", 0, "{}", None)
    lease_id, _ = state.lease_next()
    crawler.engine = RecordingEngine(state)
    request = Request("http://shop/products?page=1", meta={LEASE_KEY: lease_id})
    response = HtmlResponse(request.url, body=b"", request=request)
    return LeaseMiddleware.from_crawler(crawler), crawler, state, response


def test_requests_reach_the_engine_before_the_lease_settles(tmp_path):
    mw, crawler, state, response = setup(tmp_path)
    children = [Request(f"http://shop/product/a-{i}") for i in range(3)]
    assert spider_output(mw, response, children) == []
    assert crawler.engine.crawled == [(r.url, 1) for r in children]
    assert state.leased == 0


def test_a_response_that_yields_an_item_is_settled_by_the_export(tmp_path):
    mw, _, state, response = setup(tmp_path)
    assert spider_output(mw, response, [{"product_id": 1}]) == [{"product_id": 1}]
    assert state.leased == 1


def test_an_errback_can_keep_the_lease_for_the_next_run(tmp_path):
    from plt.job.scheduler import KEEP_LEASE_KEY

    mw, _, state, response = setup(tmp_path)
    response.request.meta[KEEP_LEASE_KEY] = True
    assert spider_output(mw, response, []) == []
    assert state.leased == 1


# A request with no item id of its own that yields items (a listing whose tiles
# are the items): no export can settle it, so it is settled once all are durable.
ITEMS = [{"product_id": 1}, {"product_id": 2}, {"product_id": 3}]


def send(crawler, signal, item, response, **kwargs):
    crawler.signals.send_catch_log(signal=signal, item=item, response=response, **kwargs)


def scraped(crawler, state, item, response, written=True):
    """What the job feed does, then Scrapy's item_scraped."""
    from scrapy import signals

    if written:
        state.mark_exported(item["product_id"], 0)
    send(crawler, signals.item_scraped, item, response)


def test_a_request_without_an_item_id_is_settled_once_each_of_its_items_is_durable(tmp_path):
    from scrapy import signals

    mw, crawler, state, response = setup(tmp_path)
    assert spider_output(mw, response, ITEMS) == ITEMS
    assert state.leased == 1  # the output is exhausted, its items are not written yet
    scraped(crawler, state, ITEMS[0], response)
    send(crawler, signals.item_dropped, ITEMS[1], response, exception=Exception())
    assert state.leased == 1  # a dropped item does not settle the others
    scraped(crawler, state, ITEMS[2], response)
    assert state.leased == 0


def test_items_done_before_the_output_is_exhausted_settle_it_at_the_end(tmp_path):
    mw, crawler, state, response = setup(tmp_path)

    async def output():
        for item in ITEMS:
            yield item
        for item in ITEMS:  # the scraper's workers may finish them first
            scraped(crawler, state, item, response)
        assert state.leased == 1

    assert collect(mw.process_spider_output(response, output())) == ITEMS
    assert state.leased == 0


def test_an_item_not_written_keeps_its_request_for_the_next_run(tmp_path):
    mw, crawler, state, response = setup(tmp_path)
    spider_output(mw, response, ITEMS)
    scraped(crawler, state, ITEMS[0], response)
    scraped(crawler, state, ITEMS[1], response, written=False)  # a write that failed
    scraped(crawler, state, ITEMS[2], response)
    assert state.leased == 1


def test_an_item_error_keeps_its_request_for_the_next_run(tmp_path):
    from scrapy import signals
    from twisted.python.failure import Failure

    from plt.job.scheduler import KEEP_LEASE_KEY

    mw, crawler, state, response = setup(tmp_path)
    crawler.stats.open_spider()
    spider_output(mw, response, ITEMS)
    scraped(crawler, state, ITEMS[0], response)
    for item in ITEMS[1:]:
        send(crawler, signals.item_error, item, response, failure=Failure(ValueError("x")))
    assert state.leased == 1 and response.request.meta[KEEP_LEASE_KEY]
    assert state.attempts(response.request.meta[LEASE_KEY]) == 1
