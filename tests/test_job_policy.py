from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.python.failure import Failure

from plt.decoding import IncompleteBody
from plt.job.policy import (
    MAY_PASS,
    PERMANENT,
    WITHDRAWN,
    RedirectFailure,
    classify,
    retry_after_seconds,
)
from plt.middlewares.headonly import ResponseTooLarge


def http_error(status: int) -> Failure:
    request = Request("http://shop.test/x")
    return Failure(HttpError(Response(request.url, status=status, request=request)))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, MAY_PASS), (403, MAY_PASS), (408, MAY_PASS), (429, MAY_PASS), (500, MAY_PASS),
     (503, MAY_PASS), (504, MAY_PASS), (404, WITHDRAWN), (410, WITHDRAWN), (400, PERMANENT),
     (451, PERMANENT)],
)  # fmt: skip
def test_http_answers(status, kind):
    verdict = classify(http_error(status))
    assert verdict.kind == kind and verdict.reason == f"http_{status}"


@pytest.mark.parametrize(
    "exc",
    [TimeoutError(), ConnectionRefusedError(), IncompleteBody("cut"), RedirectFailure("loop"),
     ValueError("could not convert string to float: ''"), OverflowError("int too large")],
)  # fmt: skip
def test_network_errors_cut_bodies_redirects_and_callbacks_that_raise_may_pass(exc):
    assert classify(exc).may_pass and classify(Failure(exc)).may_pass


def test_a_page_too_large_is_permanent():
    assert classify(ResponseTooLarge("big")).kind == PERMANENT


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
