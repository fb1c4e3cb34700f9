"""Every item a distributed crawl's listing showed, by fate (plt.job.account).

The same Account as the SQLite store's, read from the crawl's keys in batches
(HSCAN, SMISMEMBER, HMGET), so memory stays bounded by the batch size however
large the crawl. It is read when a worker closes; its causes matter when the
crawl is over (nothing queued or leased anywhere), when the only requests left
are the ones kept for the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ujson

from plt.distributed.store import JobKeys
from plt.job.sqlrecord import GIVEN_UP_ITEM, TO_DO, WITHDRAWN, Account

_BATCH = 1000


def _batches(pairs: Iterator[tuple[Any, Any]]) -> Iterator[list[tuple[Any, Any]]]:
    batch: list[tuple[Any, Any]] = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _item_id(value: Any, id_field: str) -> int | None:
    """The item id in a stored request ("<priority> <json>"), if it names one."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        item_id = ujson.loads(text.split(" ", 1)[1])["cb_kwargs"][id_field]
    except (IndexError, ValueError, TypeError, KeyError):
        return None
    return item_id if isinstance(item_id, int) and not isinstance(item_id, bool) else None


def _request_items(server: Any, keys: JobKeys, members: list[Any], id_field: str) -> list[Any]:
    """The item ids (None for none) of stored requests, read in batches."""
    ids: list[int | None] = []
    for start in range(0, len(members), _BATCH):
        values = server.hmget(keys.data, members[start : start + _BATCH])
        ids.extend(_item_id(v, id_field) for v in values)
    return ids


def redis_account(server: Any, keys: JobKeys, id_field: str) -> Account:
    left_members = [m for m, _ in server.zscan_iter(keys.queue, count=_BATCH)]
    left_members += [m for m, _ in server.zscan_iter(keys.leases, count=_BATCH)]
    kept_members = list(server.sscan_iter(keys.failed, count=_BATCH))
    kept_ids = _request_items(server, keys, kept_members, id_field)
    left_ids = _request_items(server, keys, left_members, id_field)
    others = sum(1 for i in left_ids + kept_ids if i is None)  # listing pages
    kept_items = {i for i in kept_ids if i is not None}
    queued_items = {i for i in left_ids if i is not None}
    shown = exported = withdrawn = given_up = kept = queued = to_do = 0
    for batch in _batches(server.hscan_iter(keys.shown, count=_BATCH)):
        ids = [int(item) for item, _ in batch]
        done = server.smismember(keys.exported, ids)
        pending = server.hmget(keys.pending, ids) if ids else []
        for (_, fate), item_id, is_done, partial in zip(batch, ids, done, pending, strict=True):
            shown += 1
            if is_done:
                exported += 1
                continue
            fate = int(fate)
            if fate == WITHDRAWN:
                withdrawn += 1
            elif fate == GIVEN_UP_ITEM:
                given_up += 1
            elif fate == TO_DO:
                to_do += 1
                if item_id in kept_items or partial is not None:
                    kept += 1
                elif item_id in queued_items:
                    queued += 1
    # A request given up whose item was exported all the same leaves nothing missing.
    gaveup = [item for _, item in server.hscan_iter(keys.gaveup, count=_BATCH)]
    gaveup_ids = [int(i) for i in gaveup if i not in (b"", "")]
    exported_anyway = sum(server.smismember(keys.exported, gaveup_ids)) if gaveup_ids else 0
    return Account(
        shown=shown,
        exported=exported,
        withdrawn=withdrawn,
        given_up=given_up,
        failed_for_now=kept,
        not_fetched=queued,
        no_request=to_do - kept - queued,
        requests_left=len(left_members) + len(kept_members),
        requests_given_up=len(gaveup) - exported_anyway,
        others_left=others,
    )
