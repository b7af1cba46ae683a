# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: install browser demo up test unit integration lint validate-kubernetes lock bench bench-rules bench-ingest bench-rebuild bench-what-if bench-identity bench-explain bench-backfill bench-reads bench-duty bench-scale-out clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

browser:                 ## Debian's chromium for the duty board's browser tests, when missing
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			chromium chromium-driver; \
	fi

demo: install            ## embedded stack, simulated population, timelines, alerts, the duty board
	$(VENV)/bin/joinedup demo

up: install              ## the local stack: processor, gateway, read API, duty service, until Ctrl-C
	$(VENV)/bin/joinedup up

test: $(STAMP) browser lint validate-kubernetes  ## lint, then every test (unit, integration, e2e) on real servers
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

unit: install
	$(PY) -m pytest -q tests/unit

validate-kubernetes: install  ## render deploy/kubernetes (base, overlays) and check it against the Kubernetes and CRD schemas
	$(PY) deploy/kubernetes/validate.py

lock: install            ## requirements.lock: the production image's versions, with hashes (keeps pins; --upgrade moves them)
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
		--output-file requirements.lock $(LOCK_FLAGS) pyproject.toml

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

bench-what-if: install   ## joinedup what-if (a window shortened) vs COPY and raw aiokafka (~1M events)
	$(PY) -m benchmarks.bench_what_if

bench-explain: install   ## joinedup explain, one person with 500 events: p50/p95 ms vs the archive read and the engine fold
	$(PY) -m benchmarks.bench_explain

bench-backfill: install  ## a year of one agency's history as backfill vs live; the timer's release vs its live tick
	$(PY) -m benchmarks.bench_backfill --people 2000 --months 12

bench-reads: install     ## read API p50/p99, 200-entry timeline, filtered and audited, vs the bare query
	$(PY) -m benchmarks.bench_reads

bench-duty: install browser  ## publish -> team stream / webhook p50/p99 under load; a 1,000-alert board
	$(PY) -m benchmarks.bench_duty

bench-scale-out: install  ## one and two worker processes over the same backlog vs raw aiokafka
	$(PY) -m benchmarks.bench_scale_out

clean:
	rm -rf $(VENV) .joinedup .pytest_cache .mypy_cache .ruff_cache
