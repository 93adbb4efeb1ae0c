# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PIM_PORT ?= 8001

.PHONY: run reset-pim test lint audit bench lock install check-install check-template clean

# The lock is complete (every dependency of every dependency, with its hashes), so pip installs it
# as it is (--no-deps) and resolves nothing: a newer release on the index, or an older pip that
# reads extras as requirements of their own, cannot change what is installed. A new lock makes
# the venv anew (--clear), so nothing of an older lock stays; then tools/check_install.py proves it.
LOCK_FILE ?= requirements-dev.lock
$(BIN)/.installed: $(LOCK_FILE)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (set PYTHON=python3.12 for another one)"; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r $(LOCK_FILE)
	$(BIN)/python tools/check_install.py $(LOCK_FILE)
	@touch $@

install: $(BIN)/.installed

## run: the App with a local PIM when AKENEO_CLIENT_ID is not set, the App alone otherwise
run: install
	@exec $(BIN)/python -m launcher --port $(PORT) --pim-port $(PIM_PORT)

## reset-pim: the local PIM forgets the App (a new client id and secret; connect again)
reset-pim:
	rm -f instance/devpim.json instance/local-setup.env

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
	@if [ -d app/events ]; then $(BIN)/python -m bench.realpim; fi
	@if [ -d app/events ]; then $(BIN)/python -m bench.events; fi

## lock: pin the dependencies of pyproject.toml again, with their hashes (installs verify them)
LOCK := .lock-venv/bin/uv pip compile pyproject.toml --universal --generate-hashes --no-header --upgrade
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet uv
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock
	rm -rf .lock-venv
	$(MAKE) --no-print-directory check-install

## check-install: both locks install into fresh venvs as `make install` does, with no pip cache
## (what a new machine meets); each must pass pip check and hold exactly what the lock pins
check-install:
	@for lock in requirements.lock requirements-dev.lock; do \
		rm -rf .check-venv && PIP_NO_CACHE_DIR=1 $(MAKE) --no-print-directory install \
			VENV=.check-venv LOCK_FILE=$$lock && echo "$$lock: installs as pinned" || exit 1; \
	done; rm -rf .check-venv

# [template]
## check-template: copier copies of each combination of features run their tests and serve their
## welcome page; a customised copy takes an upstream fix with copier update, with no conflict
check-template: install
	$(BIN)/python tools/check_template.py
# [/template]

clean:
	rm -rf $(VENV) .check-venv .pytest_cache .mypy_cache .ruff_cache
