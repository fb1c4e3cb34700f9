"""Redirects: each hop followed once, a loop or a wrong page a failure of its request.

Scrapy's RedirectMiddleware builds the next hop with the original's
``dont_filter``, so a hop to a URL the job has seen (a canonical URL, page 1)
would be dropped as a duplicate, silently. Seen here first (order above
RedirectMiddleware's 600, so its ``process_response`` runs before):

* a hop back to a URL of the same chain is a loop: a failure of the request
  (``plt.job.policy.RedirectFailure``, which may pass), logged by the ledger;
* a request marked ``meta["plt_redirect_same_query"]`` (a listing page) that
  is sent to another query (another page) fails the same way;
* any other hop is followed whatever the dupefilter says (``dont_filter``):
  it is the same logical request, and it takes over its original's lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlparse

from w3lib.url import safe_url_string

from plt.job.policy import RedirectFailure

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

SAME_QUERY_KEY = "plt_redirect_same_query"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RedirectGuard:
    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectGuard:
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        location = response.headers.get(b"Location")
        if (
            response.status not in REDIRECT_STATUSES
            or not location
            or request.meta.get("dont_redirect")
            or response.status in request.meta.get("handle_httpstatus_list", ())
        ):
            return response
        target = safe_url_string(urljoin(request.url, location.decode("latin-1")))
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain:
            self.stats.inc_value("plt/redirect/loop")
            raise RedirectFailure(f"redirect loop: {' -> '.join([*chain, target])}")
        if (
            request.meta.get(SAME_QUERY_KEY)
            and urlparse(target).query != urlparse(request.url).query
        ):
            self.stats.inc_value("plt/redirect/other_page")
            raise RedirectFailure(f"redirected to another page: {request.url} -> {target}")
        request.dont_filter = True  # copied to the next hop by RedirectMiddleware
        self.stats.inc_value("plt/redirect/followed")
        return response
