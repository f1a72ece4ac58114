# scrapeshield — the two quick-start commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install compile system-deps demo test lint bench bench-quality docs clean

install: $(VENV)/.installed compile

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The request path compiled with mypyc (scripts/compile.py, docs/compiled.md): rebuilt whenever
# one of its sources changes, so an edited module never runs as its older build. PURE=1 skips it.
NATIVE_SOURCES := $(shell $(PYTHON) scripts/compile.py --sources)
NATIVE_STAMP := build/mypyc/.built

ifeq ($(PURE),1)
compile:
	$(PYTHON) scripts/compile.py --clean
else
compile: $(NATIVE_STAMP)
endif

$(NATIVE_STAMP): $(VENV)/.installed scripts/compile.py scrapeshield/_native.py $(NATIVE_SOURCES)
	$(PY) scripts/compile.py

# Servers and the browser the tests use (Debian packages); skipped when present.
system-deps:
	scripts/system-deps.sh

demo: install
	$(VENV)/bin/scrapeshield demo

lint: install
	$(VENV)/bin/ruff check scrapeshield tests bench
	$(VENV)/bin/mypy

# Compiled unless PURE=1: tests/test_native.py then checks that the compiled modules really run.
test: system-deps install lint
	SCRAPESHIELD_EXPECT_COMPILED=$(if $(filter 1,$(PURE)),0,1) $(VENV)/bin/pytest -q

bench: install system-deps
	$(PY) -m bench.run

# Detection quality: real profiles each scraper persona obtains, and people hurt, in one table.
bench-quality: install
	$(PY) -m bench.quality

# The docs site, offline: regenerate the reference pages from the code, then build into build/site/.
docs: install
	$(PY) scripts/gen_docs.py
	$(VENV)/bin/mkdocs build --strict

clean:
	$(PYTHON) scripts/compile.py --clean
	rm -rf $(VENV) build/mypyc scrapeshield-data .pytest_cache .mypy_cache .ruff_cache
