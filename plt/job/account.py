"""The end of a run: every item the listing showed, accounted for.

At close the job's items are counted by fate: exported, withdrawn, given up,
or still to do (failed for now, not fetched yet, or with no request left).
A run that leaves anything to do is not finished (``plt/job/incomplete``,
exit status 3); one that leaves only items or requests given up ended with
them (``plt/job/given_up_end``, exit status 5), and a later run of that job
does nothing unless ``PLT_JOB_RETRY_FAILED=1``.
"""

from __future__ import annotations

import logging
from typing import Any

from plt.job.jobdir import FAILED_FILE
from plt.job.sqlrecord import Account

logger = logging.getLogger(__name__)

ENDED_META = "ended_given_up"  # requests given up when the job last ended


def close_account(state: Any, stats: Any, reason: str) -> bool:
    """Stats and the last lines for the job's items; True when it is finished."""
    account: Account = state.account()
    pending = state.pending_count()
    stats.set_value("plt/job/items_shown", account.shown)
    _check_announced(state, stats, account)
    if account.given_up:
        stats.set_value("plt/job/missing/given_up", account.given_up)
    if reason != "finished":
        return False
    left = account.missing + account.others_left + account.requests_left + pending
    if left:
        unread = _unread(state, account)
        missing = {
            "failed_for_now": account.failed_for_now,
            "not_fetched": account.not_fetched,
            "no_request": account.no_request,
            "on_unread_pages": unread,
        }
        for name, value in missing.items():
            if value:
                stats.set_value(f"plt/job/missing/{name}", value)
        stats.set_value("plt/job/missing", sum(missing.values()))
        stats.set_value("plt/job/incomplete", account.missing or account.requests_left or pending)
        logger.warning("%s", incomplete_line(account, pending, unread))
        return False
    if account.requests_given_up or state.given_up_count():
        given_up = account.requests_given_up
        stats.set_value("plt/job/given_up_end", given_up or state.given_up_count())
        if given_up:
            state.set_meta(ENDED_META, given_up)
            logger.error("%s", given_up_line(state, account))
        return False
    return True


def _unread(state: Any, account: Account) -> int:
    """Items the listing announced on pages not read yet."""
    announced = state.get_meta("announced_items")
    if not account.others_left or not isinstance(announced, int):
        return 0
    return max(0, announced - account.shown)


def incomplete_line(account: Account, pending: int, unread: int = 0) -> str:
    causes = [
        f"{account.failed_for_now:,} failed for now" if account.failed_for_now else "",
        f"{account.not_fetched:,} not fetched yet" if account.not_fetched else "",
        f"{account.no_request:,} with no request left" if account.no_request else "",
        f"{account.given_up:,} given up" if account.given_up else "",
    ]
    parts = []
    if account.missing:
        parts.append(
            f"{account.missing:,} of {account.shown:,} items the listing showed are missing "
            f"({', '.join(c for c in causes if c)})"
        )
    if account.others_left:
        what = f"about {unread:,} items on them, " if unread else ""
        parts.append(
            f"{account.others_left:,} requests without an item (listing pages) left, "
            f"{what}not shown yet"
        )
    if pending:
        parts.append(f"{pending:,} partial items wait for their last request")
    if not parts:
        parts.append(f"{account.requests_left:,} requests left")
    return f"The job is not finished: {'; '.join(parts)}. Run the same command again to retry them."


def given_up_line(state: Any, account: Account) -> str:
    listed = f", listed in {state.jobdir / FAILED_FILE}" if state.jobdir else ""
    return (
        f"The job ended with {account.requests_given_up:,} requests given up "
        f"({account.given_up:,} of {account.shown:,} items the listing showed){listed}; "
        f"everything else is done. -s PLT_JOB_RETRY_FAILED=1 tries them again."
    )


def _check_announced(state: Any, stats: Any, account: Account) -> None:
    """A listing whose pages showed another number of items than it announced."""
    announced = state.get_meta("announced_items")
    unread = account.requests_left or account.requests_given_up or state.given_up_count()
    if not isinstance(announced, int) or unread:
        return
    if account.shown != announced:
        stats.set_value("plt/job/listing_drift", account.shown - announced)
        logger.warning(
            "The listing announced %d items; its pages showed %d (not waited for)",
            announced,
            account.shown,
        )


def retry_failed_on_open(state: Any, settings: Any, where: Any) -> str | None:
    """On opening a job that ended with requests given up: None to go on, else why not."""
    ended = state.get_meta(ENDED_META)
    if settings.getbool("PLT_JOB_RETRY_FAILED"):
        if again := state.retry_failed():
            logger.info("PLT_JOB_RETRY_FAILED: %d requests given up are tried again", again)
        if ended:
            state.set_meta(ENDED_META, 0)
        return None
    if not ended:
        return None
    return (
        f"Job {where} ended with {ended} requests given up (listed in {FAILED_FILE}); "
        f"nothing to do. -s PLT_JOB_RETRY_FAILED=1 tries them again, -s PLT_JOB_RESET=1 "
        f"starts the job over."
    )
