"""Which failures may pass and which are permanent.

A failure that may pass (an anti-bot wall, a rate limit, a server or network
error, a body cut short, a callback that raised) is kept for the next run of
the job and counted as an attempt; a permanent one is given up at once; a page
that is gone (404, 410) is withdrawn, which is an answer, not a failure.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

WITHDRAWN = "withdrawn"
PERMANENT = "permanent"
MAY_PASS = "may_pass"

WITHDRAWN_STATUSES = frozenset({404, 410})
# 4xx answers that a later attempt may turn into a page: an expired session or
# an anti-bot wall (401, 403), a timeout (408), a rate limit (429).
MAY_PASS_4XX = frozenset({401, 403, 408, 429})


class RedirectFailure(Exception):
    """A redirect that cannot be the page asked for: a loop, or another page."""


@dataclass(frozen=True)
class Verdict:
    kind: str  # WITHDRAWN, PERMANENT or MAY_PASS
    reason: str  # short, for stats and logs: "http_403", "TimeoutError", ...

    @property
    def may_pass(self) -> bool:
        return self.kind == MAY_PASS


def classify(error: Failure | BaseException) -> Verdict:
    """The verdict on a request's failure (a Failure or the exception itself)."""
    exc = error.value if isinstance(error, Failure) else error
    if isinstance(exc, HttpError):
        return classify_status(exc.response.status)
    name = type(exc).__name__
    if isinstance(exc, RedirectFailure):
        return Verdict(MAY_PASS, "redirect")
    if isinstance(exc, IgnoreRequest):
        # Refused before or after download (too large, offsite, too many
        # redirects): another attempt gets the same answer.
        return Verdict(PERMANENT, name)
    # Network errors, timeouts, a body cut short, a callback that raised:
    # another run may see it pass, and attempts bound how often it is tried.
    return Verdict(MAY_PASS, name)


def classify_status(status: int) -> Verdict:
    if status in WITHDRAWN_STATUSES:
        return Verdict(WITHDRAWN, f"http_{status}")
    if 400 <= status < 500 and status not in MAY_PASS_4XX:
        return Verdict(PERMANENT, f"http_{status}")
    return Verdict(MAY_PASS, f"http_{status}")


def retry_after_seconds(value: Any, now: float | None = None) -> float | None:
    """A Retry-After header's delay in seconds (delta-seconds or an HTTP date)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)
