# The one entry point. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test smoke lock lock-upgrade lint typecheck fmt fuzz bench migrate standin install install-dev clean openapi

# Installs exactly the locked versions (requirements/*.txt, with hashes), then the project itself
# without letting pip resolve anything more; `pip check` proves the lock is complete.
$(VENV)/.installed: requirements/runtime.txt pyproject.toml
	rm -f $(VENV)/.installed-dev
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements/runtime.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements/dev.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements/dev.txt
	$(PY) -m pip check
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: migrate the embedded SQLite store, mint a local key, serve the API in the foreground
run: install
	$(PY) -m app.launcher

## test: the whole suite against this machine's real Postgres and Redis
test: install-dev
	$(PY) -m pytest

## smoke: `make run` from a fresh runtime-only install, with and without Redis, stopped by
## Ctrl-C, SIGTERM and a dead worker (what CI proves on every submission)
smoke:
	$(PYTHON) .ci/smoke.py

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

## openapi: rewrite the checked-in openapi.json from the app (a test fails when it drifts)
openapi: install
	$(PY) -m app.openapi_export

## fuzz: schemathesis against the OpenAPI document and the sweep state machine, more
## examples than `make test` runs
fuzz: install-dev
	FUZZ_EXAMPLES=300 $(PY) -m pytest tests/api/test_openapi_fuzz.py -p no:cacheprovider
	STATE_MACHINE_EXAMPLES=300 $(PY) -m pytest tests/db/test_state_machine.py -p no:cacheprovider

bench: install-dev
	$(PY) -m bench.submit
	$(PY) -m bench.preflight
	$(PY) -m bench.claims
	$(PY) -m bench.execution
	$(PY) -m bench.fairness
	$(PY) -m bench.grids
	$(PY) -m bench.grid_finalize
	$(PY) -m bench.load

## standin: one ComfyUI stand-in on :8188, for trying the client or a local worker
standin: install
	$(PY) -m app.standin --port 8188

migrate: install
	$(VENV)/bin/alembic upgrade head

clean:
	rm -rf $(VENV) var

## lock: re-resolve requirements/*.txt after a change to pyproject.toml (pins kept where they
## still fit); `make lock-upgrade` moves every pin to the newest release that fits.
LOCK_VENV := .venv-lock
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q 'pip-tools==7.7.0'

lock: $(LOCK_VENV)/bin/pip-compile
	$(PIP_COMPILE) -o requirements/runtime.txt pyproject.toml requirements/build.in
	$(PIP_COMPILE) --extra dev -o requirements/dev.txt pyproject.toml requirements/build.in \
		requirements/dev.in

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade
