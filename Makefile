# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: install demo up test unit integration lint bench bench-rules bench-ingest bench-rebuild bench-identity bench-reads clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install            ## embedded stack, simulated population, timelines and alerts
	$(VENV)/bin/joinedup demo

up: install              ## the local stack with processor and gateway, until Ctrl-C
	$(VENV)/bin/joinedup up

test: lint               ## lint, then every test (unit, integration, e2e) on real servers
	$(PY) -m pytest -q -p no:cacheprovider

unit: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check services projections schemas tests benchmarks
	$(VENV)/bin/mypy

bench: install           ## live processor vs raw aiokafka and COPY, then the rebuild (~1M events)
	$(PY) -m benchmarks.bench_processor
	$(PY) -m benchmarks.bench_rebuild

bench-rules: install
	$(PY) -m benchmarks.bench_rules

bench-ingest: install
	$(PY) -m benchmarks.bench_ingest

bench-identity: install  ## admission with the identity step vs raw aiokafka consume + produce
	$(PY) -m benchmarks.bench_identity

bench-rebuild: install   ## joinedup rebuild from the archive vs COPY, per-stage µs (~1M events)
	$(PY) -m benchmarks.bench_rebuild

bench-reads: install     ## read API p50/p99, 200-entry timeline, filtered and audited, vs the bare query
	$(PY) -m benchmarks.bench_reads

clean:
	rm -rf $(VENV) .joinedup .pytest_cache .mypy_cache .ruff_cache
