# Two commands on a fresh machine:
#   make crawl   install what is needed and run the day's job against the demo retailer
#   make test    install what is needed and run the lint and the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install crawl test lint

$(BIN)/scrapy: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/scrapy

crawl: install
	$(BIN)/scrapy crawl product -s PLT_EMBEDDED_SHOP=1 $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest
