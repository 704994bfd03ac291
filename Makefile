# Perpetua developer commands. `make` alone lists them.
#
# Every target that runs code depends on `venv`, which creates .venv on first use and reinstalls
# only when pyproject.toml is newer than the stamp file .venv/.installed, so repeated runs are fast.

.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Interpreter that creates the venv; empty means python3.11, else python3 (must be >= 3.11).
PYTHON ?=
# Extra pytest arguments, e.g. `make test ARGS="-k book -x"`.
ARGS ?=
# pytest-xdist workers for make test/test-fast/test-pure; each takes whole test modules (their
# module fixtures start servers once). Two nearly halve the wall time on two cores; 0 runs pytest
# in one process (docs/development.md).
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

# The web terminal: sources in web/, built by Vite into the package, where the gateway serves it.
WEB_DIST := src/perpetua/web/dist/index.html
WEB_MODULES := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
               web/vite.config.ts web/tsconfig.json web/package.json
CHROMIUM ?= /usr/bin/chromium
# The local chain (docs/wallets.md): anvil and solc from chain/package-lock.json.
CHAIN_MODULES := chain/node_modules/.installed
NODE_MISSING := error: node and npm are needed to build the web terminal (web/); install Node.js >= 20.19 with npm (Debian: apt-get install nodejs npm)

.PHONY: cluster help venv core test test-py test-fast test-pure test-web check bench run clean web chain contracts

help:
	@echo "Perpetua: make targets"
	@echo "  make run     build the web terminal if its sources changed, start the demo exchange"
	@echo "  make test    run the test suite (pytest; ARGS=\"...\" passes options), then the browser tests"
	@echo "  make test-fast  the suite without tests marked slow (CI runs them all)"
	@echo "  make chain   install anvil (local Ethereum node) and solc into chain/node_modules (npm ci)"
	@echo "  make contracts  recompile chain/contracts/*.sol into src/perpetua/chain/contracts/ (commit it)"
	@echo "  make web     build the web terminal (web/ -> src/perpetua/web/dist; needs node and npm)"
	@echo "  make test-web  the browser tests alone (Chromium at CHROMIUM=$(CHROMIUM))"
	@echo "  make test-pure  the core suites on the pure-Python core (PERPETUA_CORE=python)"
	@echo "  make core    recompile the core with mypyc after editing it (make venv does it once)"
	@echo "  make check   ruff (lint and format), mypy (strict) and the tidy/layering tests"
	@echo "  make bench   run bench/bench_*.py, write bench/results/latest.json"
	@echo "  make venv    create or update .venv (python3.11, or python3 >= 3.11; PYTHON=... to choose)"
	@echo "  make cluster  3 nats-server nodes, 2 sequencers, 2 gateways (port 8000), a projector; Ctrl-C stops"
	@echo "  make clean   remove .venv, caches and bench results"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@set -e; \
	py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for cand in python3.11 python3; do \
	    if "$$cand" -c 'import sys' >/dev/null 2>&1; then py="$$cand"; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "error: neither python3.11 nor python3 runs here; install Python >= 3.11" >&2; exit 1; \
	fi; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "error: Perpetua needs Python >= 3.11, but $$py is $$("$$py" -V 2>&1);" \
	       "install 3.11 or run: make venv PYTHON=/path/to/python3.11" >&2; \
	  exit 1; \
	fi; \
	if [ -e $(VENV) ] && ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "$(VENV) is broken or older than Python 3.11: recreating it"; rm -rf $(VENV); \
	fi; \
	if [ ! -e $(VENV) ]; then \
	  echo "creating $(VENV) with $$("$$py" -V 2>&1) ($$(command -v "$$py"))"; \
	  "$$py" -m venv $(VENV) || { \
	    echo "error: '$$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	    rm -rf $(VENV); exit 1; }; \
	fi; \
	echo "installing perpetua and its dev dependencies into $(VENV) (compiling the core with mypyc: a minute or two)"; \
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-input -e '.[dev]'; \
	$(VPY) -c 'import perpetua.corebuild as c; print("perpetua:", c.describe())'; \
	touch $@

# Recompile the core in place (src/perpetua/core/_native/) after editing it; until then the
# pure-Python sources run (perpetua.corebuild notices the stale build and warns).
core: venv
	@if PERPETUA_CORE=python $(VPY) -c 'import sys, perpetua.corebuild as c; sys.exit(bool(c.native_problem()))'; \
	then echo "perpetua: the compiled core is up to date"; \
	else $(VPY) setup.py --quiet build_ext --inplace; fi
	@$(VPY) -c 'import perpetua.corebuild as c; print("perpetua:", c.describe())'

# The core suites on the pure-Python core: the fallback must stay correct, not only the default.
test-pure: venv
	PERPETUA_CORE=python $(VPY) -m pytest $(XDIST) tests/core tests/sequencer $(ARGS)

# node_modules follow package-lock.json exactly (npm ci); the stamp is newer than the lock file.
$(WEB_MODULES): web/package-lock.json web/package.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "$(NODE_MISSING)" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund
	@touch $@

# Rebuilt only when a source is newer than the build (make compares the files' times).
$(WEB_DIST): $(WEB_MODULES) $(WEB_SOURCES)
	@command -v node >/dev/null 2>&1 || { echo "$(NODE_MISSING)" >&2; exit 1; }
	@echo "building the web terminal (web/ -> src/perpetua/web/dist)"
	cd web && npm run --silent build

web: $(WEB_DIST)

$(CHAIN_MODULES): chain/package-lock.json chain/package.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "$(NODE_MISSING)" >&2; exit 1; }
	cd chain && npm ci --no-audit --no-fund
	@touch $@

chain: $(CHAIN_MODULES)

# The token contract is compiled here and its bytecode committed (reviewed); start-up deploys it.
contracts: chain
	cd chain && node compile.mjs

# pytest exits 5 when it collects no tests; that is a failure here, not a silent success.
test: test-py test-web

# Every test runs, slow ones included (CI runs this); the 20 slowest are reported at the end.
test-py: venv chain
	@$(VPY) -m pytest $(XDIST) --durations=20 $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$rc

# While working: everything but the tests marked slow (real processes, long fuzz, crash loops).
test-fast: venv chain
	@$(VPY) -m pytest $(XDIST) -m "not slow" $(ARGS)

# The browser tests drive Debian's Chromium (no browser downloads here) through playwright-core,
# against a real `perpetua demo` process.
test-web: venv web
	@[ -x "$(CHROMIUM)" ] || { echo "error: the browser tests need Chromium at $(CHROMIUM)" \
	  "(Debian: apt-get install chromium; or make test CHROMIUM=/path/to/chromium)" >&2; exit 1; }
	cd web && PERPETUA_CHROMIUM=$(CHROMIUM) PERPETUA_PYTHON=$(CURDIR)/$(VPY) npm test

# Runs all three checks even when one fails, then fails if any did.
check: venv
	@status=0; \
	echo "== ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "== ruff format --check"; $(VENV)/bin/ruff format --check src tests bench || status=1; \
	echo "== mypy"; $(VPY) -m mypy || status=1; \
	echo "== tidy and layering tests"; \
	$(VPY) -m pytest tests/test_tidy.py tests/test_layering.py || status=1; \
	if [ $$status -ne 0 ]; then echo "make check: FAILED" >&2; else echo "make check: ok"; fi; \
	exit $$status

bench: venv chain
	$(VPY) bench/run_all.py

run: venv web chain
	$(VENV)/bin/perpetua demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/perpetua/core/_native .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	       bench/results web/node_modules chain/node_modules web/e2e/artifacts src/perpetua/web/dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# A whole cluster on loopback (docs/cluster.md): needs nats-server and PostgreSQL
# (PERPETUA_DATABASE_URL, default the local trust-auth server's perpetua_cluster database).
CLUSTER_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/perpetua_cluster
cluster: venv
	@psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='perpetua_cluster'" \
	  | grep -q 1 || psql -h 127.0.0.1 -U postgres -c "create database perpetua_cluster" >/dev/null
	PERPETUA_DATABASE_URL=$${PERPETUA_DATABASE_URL:-$(CLUSTER_DB)} $(VPY) -m perpetua.runtime.cluster_dev
