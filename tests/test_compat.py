from __future__ import annotations

import argparse
import logging

import pytest
import scrapy
from scrapy.core.downloader import Downloader
from scrapy.crawler import Crawler
from scrapy.settings import Settings
from scrapy_deltafetch.middleware import DeltaFetch

from plt import compat
from plt.commands.crawl import CONFIG_ERROR_EXIT, Command


@pytest.fixture(autouse=True)
def fresh_check():
    compat.check.cache_clear()
    yield
    compat.check.cache_clear()


def test_every_private_name_exists_on_the_installed_scrapy():
    assert scrapy.__version__.startswith(compat.TESTED_SCRAPY)
    assert compat.missing() == []
    compat.check()


def test_a_missing_method_fails_with_one_line(monkeypatch):
    monkeypatch.delattr(Downloader, "_process_queue")
    with pytest.raises(compat.ScrapyCompatError) as info:
        compat.check()
    message = str(info.value)
    assert "\n" not in message
    assert "scrapy.core.downloader.Downloader._process_queue()" in message
    assert f"Scrapy {scrapy.__version__}" in message


def test_a_missing_instance_attribute_is_found_in_the_code_that_sets_it():
    # Crawler._engine exists only on instances: it is looked for where it is assigned.
    assert compat.missing(((Crawler, "_engine", ""),)) == []
    assert compat.missing(((Crawler, "_no_such_engine", ""),)) == [
        "scrapy.crawler.Crawler._no_such_engine"
    ]


def test_several_missing_names_are_counted_in_the_one_line(monkeypatch):
    monkeypatch.delattr(DeltaFetch, "_get_key")
    monkeypatch.delattr(DeltaFetch, "_is_enabled_for_request")
    with pytest.raises(compat.ScrapyCompatError, match=r"_get_key\(\), .*nor 1 other"):
        compat.check()


def test_the_crawl_command_stops_before_crawling(monkeypatch, tmp_path, caplog):
    monkeypatch.delattr(Downloader, "_process_queue")
    command = Command()
    command.settings = Settings({"JOBDIR": str(tmp_path / "job")})
    with caplog.at_level(logging.ERROR):
        command.run(["product"], argparse.Namespace(spargs={}))
    assert command.exitcode == CONFIG_ERROR_EXIT
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Downloader._process_queue()" in errors[0]
    assert not (tmp_path / "job").exists()
