"""Retry a 401 or 403 answer a few times within a run, fewer than other failures.

An anti-bot wall often lifts after a moment, but hammering it is what keeps it
up: Scrapy's RetryMiddleware does not retry these codes at all, and giving them
its whole RETRY_TIMES would be impolite. ``PLT_RETRY_FORBIDDEN_TIMES`` (default
1) retries are sent in this run; a request still refused after them is a
failure that may pass, kept by the job ledger for the next run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

STATUSES = frozenset({401, 403})


class ForbiddenRetryMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.times = settings.getint("PLT_RETRY_FORBIDDEN_TIMES", 1)
        if self.times <= 0 or not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ForbiddenRetryMiddleware:
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if response.status not in STATUSES or request.meta.get("dont_retry"):
            return response
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=f"{response.status} (refused)",
            max_retry_times=self.times,
            # The job ledger logs the failure once the retries are spent.
            give_up_log_level=logging.DEBUG,
        )
        return retry or response
