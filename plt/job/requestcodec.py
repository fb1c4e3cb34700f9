"""Requests to JSON and back, where the JSON can never name code.

Scrapy's ``request_from_dict`` imports the module named by a stored
``_class`` and resolves callbacks by any attribute name. A job directory (or a
Redis crawl) is data, so here a stored request may name only one of Scrapy's
own request classes, by a fixed dotted name compared as a string, and only
callbacks and errbacks that are methods of the running spider. Nothing is
ever imported from what is read back. Anything else is an
:class:`UndecodableRequest`, which the schedulers give up on.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import ujson
from scrapy import Request
from scrapy.http import FormRequest, JsonRequest, XmlRpcRequest
from scrapy.spidermiddlewares.referer import (
    DefaultReferrerPolicy,
    NoReferrerPolicy,
    NoReferrerWhenDowngradePolicy,
    OriginPolicy,
    OriginWhenCrossOriginPolicy,
    SameOriginPolicy,
    StrictOriginPolicy,
    StrictOriginWhenCrossOriginPolicy,
    UnsafeUrlPolicy,
)

if TYPE_CHECKING:
    from scrapy import Spider

LEASE_KEY = "plt_lease"
# Set by an errback on a request whose failure is worth another run.
KEEP_LEASE_KEY = "plt_keep_lease"
# Meta keys of one run, never stored.
TRANSIENT_META = (LEASE_KEY, KEEP_LEASE_KEY)
# Scrapy's retry and redirect budgets: kept in memory for the run (see
# run_meta), never stored, so that every run gives a request its full budget.
RUN_META = ("retry_times", "redirect_times", "redirect_ttl", "redirect_urls", "redirect_reasons")

# Scrapy's request classes, by the name Request.to_dict() writes and by their
# public import path. Compared as strings: never passed to an importer.
REQUEST_CLASSES: dict[str, type[Request]] = {
    f"{cls.__module__}.{cls.__name__}": cls
    for cls in (Request, FormRequest, JsonRequest, XmlRpcRequest)
} | {
    "scrapy.Request": Request,
    "scrapy.FormRequest": FormRequest,
    "scrapy.http.Request": Request,
    "scrapy.http.FormRequest": FormRequest,
    "scrapy.http.JsonRequest": JsonRequest,
    "scrapy.http.XmlRpcRequest": XmlRpcRequest,
}

# RefererMiddleware imports a meta["referrer_policy"] that is a dotted path;
# a stored request may carry only the standard policy names.
REFERRER_POLICIES = frozenset(
    cls.name
    for cls in (
        NoReferrerPolicy,
        NoReferrerWhenDowngradePolicy,
        SameOriginPolicy,
        OriginPolicy,
        StrictOriginPolicy,
        OriginWhenCrossOriginPolicy,
        StrictOriginWhenCrossOriginPolicy,
        UnsafeUrlPolicy,
        DefaultReferrerPolicy,
    )
)


class UndecodableRequest(ValueError):
    """A stored request that is not JSON of a request this spider can run."""


def request_to_json(request: Request, spider: Spider) -> str:
    """JSON, not pickle: bytes fields are carried as latin-1 text."""
    d = request.to_dict(spider=spider)
    d["body"] = d["body"].decode("latin-1")
    d["headers"] = {
        k.decode("latin-1"): [v.decode("latin-1") for v in vs] for k, vs in d["headers"].items()
    }
    d["meta"] = {
        k: v for k, v in d["meta"].items() if k not in TRANSIENT_META and k not in RUN_META
    }
    return ujson.dumps(d, reject_bytes=True)


def run_meta(request: Request) -> dict[str, Any]:
    """The meta of this run only (Scrapy's retry and redirect counts)."""
    return {k: request.meta[k] for k in RUN_META if k in request.meta}


def request_from_json(data: str | bytes | None, spider: Spider) -> Request:
    """The request stored as ``data``; UndecodableRequest for anything else."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UndecodableRequest("binary data, not JSON") from None
    if not isinstance(data, str):
        raise UndecodableRequest(f"no request stored ({type(data).__name__})")
    try:
        d = ujson.loads(data)
    except ValueError as exc:
        raise UndecodableRequest(f"not JSON ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("url"), str):
        raise UndecodableRequest("not a stored request (no url)")
    name = d.get("_class", "scrapy.http.request.Request")
    request_cls = REQUEST_CLASSES.get(name) if isinstance(name, str) else None
    if request_cls is None:
        raise UndecodableRequest(f"request class {name!r} is not one of Scrapy's")
    kwargs = {key: value for key, value in d.items() if key in request_cls.attributes}
    for key in ("callback", "errback"):
        if d.get(key) is not None:
            kwargs[key] = spider_method(spider, d[key])
    meta = kwargs.get("meta")
    if isinstance(meta, dict) and "referrer_policy" in meta:
        _check_referrer_policy(meta["referrer_policy"])
    try:
        kwargs["body"] = str(d.get("body", "")).encode("latin-1")
        kwargs["headers"] = _headers(d.get("headers") or {})
        return request_cls(**kwargs)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise UndecodableRequest(f"invalid request fields ({exc})") from None


def spider_method(spider: Spider, name: Any) -> Any:
    """The spider's own bound method called ``name``: never a dotted path."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
        raise UndecodableRequest(f"callback {name!r} is not a method name")
    method = getattr(spider, name, None)
    if not inspect.ismethod(method) or method.__self__ is not spider:
        raise UndecodableRequest(f"callback {name!r} is not a method of spider {spider.name!r}")
    return method


def _headers(raw: Any) -> dict[str, list[bytes]]:
    if not isinstance(raw, dict) or not all(isinstance(vs, list) for vs in raw.values()):
        raise TypeError("headers are not lists of values by name")
    return {str(k): [str(v).encode("latin-1") for v in vs] for k, vs in raw.items()}


def _check_referrer_policy(value: Any) -> None:
    names = [part.strip().lower() for part in value.split(",")] if isinstance(value, str) else []
    if not names or not all(n in REFERRER_POLICIES for n in names):
        raise UndecodableRequest(f"referrer_policy {value!r} is not a standard policy name")
