# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PIM_PORT ?= 8001

.PHONY: run reset-pim test lint audit bench lock install clean

$(BIN)/.installed: requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (set PYTHON=python3.12 for another one)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	@touch $@

install: $(BIN)/.installed

## run: the App with a local PIM when AKENEO_CLIENT_ID is not set, the App alone otherwise
run: install
	@exec $(BIN)/python -m launcher --port $(PORT) --pim-port $(PIM_PORT)

## reset-pim: the local PIM forgets the App (a new client id and secret; connect again)
reset-pim:
	rm -f instance/devpim.json

## test: every test, browser and PostgreSQL ones included (they skip outside CI when unavailable),
## on three processes: most of the slow tests wait on servers and workers, not on the CPU
test: install
	$(BIN)/pytest -n 3 --dist worksteal $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: install
	$(BIN)/pip-audit --strict --requirement requirements.lock

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.products
	@if [ -d app/sync ]; then $(BIN)/python -m bench.sync; fi
	@if [ -d app/events ]; then $(BIN)/python -m bench.events; fi

## lock: pin the dependencies of pyproject.toml again, with their hashes (installs verify them)
LOCK := .lock-venv/bin/uv pip compile pyproject.toml --universal --generate-hashes --no-header --upgrade
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet uv
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
