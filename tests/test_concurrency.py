from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from plt.concurrency import ConcurrencyControl
from tests.helpers import FakeEngine, FakeSlot


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(64, 16)


@pytest.fixture
def control(engine: FakeEngine) -> ConcurrencyControl:
    return ConcurrencyControl(SimpleNamespace(engine=engine))


def concurrency(engine: FakeEngine) -> dict[str, int]:
    return {key: slot.concurrency for key, slot in engine.downloader.slots.items()}


def test_target_caps_the_total_and_each_slot_at_its_own_maximum(control, engine) -> None:
    control.apply(32)
    assert engine.downloader.total_concurrency == 32
    assert concurrency(engine) == {"shop.example": 16, "api.example": 16}
    control.apply(8)
    assert concurrency(engine) == {"shop.example": 8, "api.example": 8}
    control.apply(64)  # back to each slot's own maximum, never above it
    assert engine.downloader.total_concurrency == 64
    assert concurrency(engine) == {"shop.example": 16, "api.example": 16}


def test_new_and_gone_slots(control, engine) -> None:
    control.apply(8)
    slots = engine.downloader.slots
    slots["cdn.example"] = FakeSlot(16)  # created by the downloader at the domain default
    del slots["api.example"]  # garbage-collected by the downloader
    control.apply(8)
    assert slots["cdn.example"].concurrency == 8
    assert set(control._slot_max) == {"shop.example", "cdn.example"}
    control.apply(64)
    assert slots["cdn.example"].concurrency == 16


def test_raising_a_slot_starts_its_queued_downloads(control, engine) -> None:
    control.apply(4)
    shop = engine.downloader.slots["shop.example"]
    shop.queue.append(object())
    control.apply(4)  # unchanged: nothing to start
    control.apply(2)  # lowered: nothing to start
    assert engine.downloader.processed == []
    control.apply(8)
    assert engine.downloader.processed == [shop]  # api.example's queue is empty


def test_pause_and_resume(control, engine) -> None:
    assert control.pause()
    assert engine.paused
    engine._slot.nextcall.schedule.assert_not_called()
    control.resume()
    assert not engine.paused
    engine._slot.nextcall.schedule.assert_called_once_with()  # not at the next heartbeat


def test_a_pause_made_by_someone_else_is_not_ours(control, engine) -> None:
    engine.pause()  # e.g. from the telnet console
    assert not control.pause()
    assert engine.paused


def test_drained_once_nothing_is_downloaded_or_parsed(control, engine) -> None:
    engine.scraper = SimpleNamespace(slot=mock.Mock(is_idle=mock.Mock(return_value=True)))
    assert not control.drained()  # a download in flight
    engine.downloader.active.clear()
    assert control.drained()
    engine.scraper.slot.is_idle.return_value = False  # a response being parsed
    assert not control.drained()
