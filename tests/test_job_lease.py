from __future__ import annotations

from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from plt.job.lease import LeaseMiddleware
from plt.job.scheduler import LEASE_KEY
from plt.job.sqlite import SQLiteJobStore
from plt.job.store import job_store
from tests.helpers import spider_output


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
