PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev run test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

run: install
	$(BIN)/stories migrate
	$(BIN)/stories serve --host $(HOST) --port $(PORT)

test: install-dev
	bash .ci/install-browser.sh
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) data/*.db
