# The two commands a newcomer needs: `make run` and `make test`. Both create or refresh
# .venv themselves; the stamp makes that a no-op when pyproject.toml has not changed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: run test lint bench soak clean image

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/simfleet run --specs specs --backend local

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check controller tests benchmarks specs deploy
	$(BIN)/ruff format --check controller tests benchmarks specs deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .simfleet .pytest_cache .mypy_cache .ruff_cache build

# The controller image (Dockerfile) with no registry: the base from Debian packages when
# it is not there yet, the project as wheels built here. IMAGE and BASE may be changed.
IMAGE ?= simfleet:latest
BASE ?= simfleet-base:bookworm
image: $(STAMP)
	docker image inspect $(BASE) >/dev/null 2>&1 || deploy/make-base $(BASE)
	rm -rf build/wheels
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --wheel-dir build/wheels . pip
	docker build --build-arg BASE=$(BASE) --tag $(IMAGE) .
	docker image prune --force --filter label=simfleet.stage=builder >/dev/null

# Issue 8's figures beside their lower bounds, one table (benchmarks/bench.py); BENCH_ARGS
# e.g. "--quick" or "--markdown benchmarks/RESULTS.md".
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The daemon under random edits, bad files, crashes, Batch faults and kill -9 (README,
# "Soak testing"); MINUTES per backend. Not part of `make test`.
MINUTES ?= 10
SIMULATORS ?= 500
BACKEND ?= both
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES) --simulators $(SIMULATORS) \
		--backend $(BACKEND) $(if $(SEED),--seed $(SEED))
