# The one entry point. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck fmt fuzz bench migrate standin install install-dev clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: migrate the embedded SQLite store, mint a local key, serve the API in the foreground
run: install
	$(PY) -m app.launcher

## test: the whole suite against this machine's real Postgres and Redis
test: install-dev
	$(PY) -m pytest

## lint: ruff and the import-linter architecture contracts
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install-dev
	$(VENV)/bin/mypy app workers tests bench

fmt: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## fuzz: schemathesis against the OpenAPI document, more examples than `make test` runs
fuzz: install-dev
	FUZZ_EXAMPLES=300 $(PY) -m pytest tests/api/test_openapi_fuzz.py -p no:cacheprovider

bench: install-dev
	$(PY) -m bench.submit
	$(PY) -m bench.preflight
	$(PY) -m bench.claims
	$(PY) -m bench.execution
	$(PY) -m bench.grids

## standin: one ComfyUI stand-in on :8188, for trying the client or a local worker
standin: install
	$(PY) -m app.standin --port 8188

migrate: install
	$(VENV)/bin/alembic upgrade head

clean:
	rm -rf $(VENV) var
