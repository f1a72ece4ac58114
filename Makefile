# scrapeshield — the two quick-start commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install system-deps demo test lint bench bench-quality docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Servers and the browser the tests use (Debian packages); skipped when present.
system-deps:
	scripts/system-deps.sh

demo: install
	$(VENV)/bin/scrapeshield demo

lint: install
	$(VENV)/bin/ruff check scrapeshield tests bench
	$(VENV)/bin/mypy

test: install system-deps lint
	$(VENV)/bin/pytest -q

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
	rm -rf $(VENV) scrapeshield-data .pytest_cache .mypy_cache .ruff_cache
