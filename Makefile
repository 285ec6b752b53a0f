# The two commands a newcomer runs: `make demo` and `make test`. Both set up what is missing.
PY := .venv/bin/python
export PLAYWRIGHT_BROWSERS_PATH := 0
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup demo test test-min lint types pytest bench faults fmt clean vendor-plotly

setup:
	@./scripts/setup.sh

demo: setup
	$(PY) -m fixtures.demo --out demo-output

test: setup lint types pytest test-min

lint:
	.venv/bin/ruff check evidence fixtures tests bench
	.venv/bin/ruff format --check evidence fixtures tests bench

types:
	.venv/bin/mypy

pytest:
	.venv/bin/pytest -q

# The declared floors proven: the base dependencies at exactly pyproject.toml's floors in .venv-min,
# no extras, the tests that need only the base. Part of `make test`, so CI proves the floors too.
test-min:
	@./scripts/test-min.sh

# The fault and hostile-input suite, slow cases included; its last line is the figure the README quotes.
faults: setup
	@rm -f test-artifacts/faults.json
	@EVIDENCE_FAULTS_ALL=1 EVIDENCE_FAULTS_REPORT=test-artifacts/faults.json .venv/bin/pytest -q -p no:cacheprovider tests/faults; \
	status=$$?; $(PY) -m tests.faults.report test-artifacts/faults.json; rc=$$?; \
	[ $$status -eq 0 ] && exit $$rc || exit $$status

bench: setup
	$(PY) -m bench.run

# Re-fetch the vendored plotly.js (committed under evidence/render/vendor/) at its pinned version.
vendor-plotly:
	./scripts/vendor-plotly.sh

fmt: setup
	.venv/bin/ruff format evidence fixtures tests bench
	.venv/bin/ruff check --fix evidence fixtures tests bench

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache .venv-min
