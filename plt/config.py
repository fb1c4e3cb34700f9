"""Checks of the settings a crawl needs, done once before anything is fetched.

Each check raises plt.errors.ConfigError with a message that names the setting
and what to set instead.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from plt.errors import ConfigError
from plt.shop.catalog import ShopConfig

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

# Concurrency settings and the least each may be; PLT_MAX_CONCURRENT_REQUESTS 0 is no cap.
CONCURRENCY_MINIMUM = {
    "CONCURRENT_REQUESTS": 1,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    "CONCURRENT_ITEMS": 1,
    "PLT_MAX_CONCURRENT_REQUESTS": 0,
}
NO_SHOP_URL = (
    "SHOP_URL is not set: name the retailer with -s SHOP_URL=https://retailer.example, "
    "or crawl the bundled demo retailer with -s PLT_EMBEDDED_SHOP=1"
)


def get_int(settings: BaseSettings, name: str) -> int:
    try:
        return settings.getint(name)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {settings[name]!r}") from None


def check_concurrency(settings: BaseSettings) -> None:
    for name, minimum in CONCURRENCY_MINIMUM.items():
        value = get_int(settings, name)
        if value < minimum:
            what = "positive" if minimum == 1 else "0 or more"
            raise ConfigError(f"{name} must be {what}, got {value}")


def check_url(settings: BaseSettings, name: str) -> None:
    """An http(s) URL with a host, if set at all."""
    value = settings.get(name)
    if not value:
        return
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"{name} {value!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        hint = f" (did you mean https://{value}?)" if "://" not in value else ""
        raise ConfigError(
            f"{name} {value!r} is not an http(s) URL with a host, "
            f"e.g. https://retailer.example{hint}"
        )


def shop_config(settings: BaseSettings) -> ShopConfig:
    """The demo retailer's ShopConfig from PLT_EMBEDDED_SHOP_OPTIONS."""
    name = "PLT_EMBEDDED_SHOP_OPTIONS"
    try:
        options: dict[str, Any] = settings.getdict(name)
    except (TypeError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ConfigError(f"{name} is not a JSON object ({reason})") from None
    fields = {f.name: f for f in dataclasses.fields(ShopConfig)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(
            f"{name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    for key, value in options.items():
        kind = type(fields[key].default)
        allowed = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            what = {float: "a number", str: "a string"}.get(kind, "a whole number")
            raise ConfigError(f"{name}: {key} must be {what}, got {value!r}")
    try:
        return ShopConfig(**options)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def get_bool(settings: BaseSettings, name: str) -> bool:
    try:
        return settings.getbool(name)
    except ValueError:
        value = settings[name]
        raise ConfigError(f"{name} must be 1 or 0 (True or False), got {value!r}") from None


def uses_embedded_shop(settings: BaseSettings) -> bool:
    return not settings.get("SHOP_URL") and get_bool(settings, "PLT_EMBEDDED_SHOP")


def check_retailer(settings: BaseSettings) -> None:
    """SHOP_URL and STOCK_API_URL, or the demo retailer explicitly asked for."""
    check_url(settings, "SHOP_URL")
    check_url(settings, "STOCK_API_URL")
    if uses_embedded_shop(settings):
        shop_config(settings)
    elif not settings.get("SHOP_URL"):
        raise ConfigError(NO_SHOP_URL)
