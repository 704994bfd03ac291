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

.PHONY: help venv test check bench run clean

help:
	@echo "Perpetua: make targets"
	@echo "  make run     start the demo exchange (.venv/bin/perpetua demo)"
	@echo "  make test    run the test suite (pytest; ARGS=\"...\" passes options)"
	@echo "  make check   ruff, mypy (strict on core) and the tidy/layering tests"
	@echo "  make bench   run bench/bench_*.py, write bench/results/latest.json"
	@echo "  make venv    create or update .venv (python3.11, or python3 >= 3.11; PYTHON=... to choose)"
	@echo "  make clean   remove .venv, caches and bench results"

venv: $(STAMP)

$(STAMP): pyproject.toml
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
	echo "installing perpetua and its dev dependencies into $(VENV)"; \
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-input -e '.[dev]'; \
	touch $@

# pytest exits 5 when it collects no tests; that is a failure here, not a silent success.
test: venv
	@$(VPY) -m pytest $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$rc

# Runs all three checks even when one fails, then fails if any did.
check: venv
	@status=0; \
	echo "== ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "== mypy"; $(VPY) -m mypy || status=1; \
	echo "== tidy and layering tests"; \
	$(VPY) -m pytest tests/test_tidy.py tests/test_layering.py || status=1; \
	if [ $$status -ne 0 ]; then echo "make check: FAILED" >&2; else echo "make check: ok"; fi; \
	exit $$status

bench: venv
	$(VPY) bench/run_all.py

run: venv
	$(VENV)/bin/perpetua demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	       bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
