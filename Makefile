# `make demo` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel by default; GPU users: make TORCH=torch (or install their CUDA build first).
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo report test test-fast lint clean slurm-up slurm-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

venv: $(STAMP)

demo: $(STAMP)  ## adamw vs lion on the three embedded workloads, then a table
	$(BIN)/python run.py experiment=demo
	$(BIN)/python -m harness.report.summary results/demo

RESULTS ?= results/demo
report: $(STAMP)  ## leaderboards, LaTeX table and figures for RESULTS (default results/demo)
	$(BIN)/python -m harness.report $(RESULTS)

# Two workers share the 2 cores, one torch thread each. The Slurm tests share one cluster and
# mostly wait for it, so one process runs them beside the others; their output follows. The
# exit status is non-zero if either part failed.
test: $(STAMP)  ## the whole test suite (slow and slurm tests included)
	@log=$$(mktemp); \
	$(BIN)/python -m pytest -m slurm -p no:cacheprovider > $$log 2>&1 & slurm=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slurm" -n 2; status=$$?; \
	wait $$slurm; slurm_status=$$?; \
	echo "== the Slurm tests, run beside the others:"; cat $$log; rm -f $$log; \
	test $$status -eq 0 && test $$slurm_status -eq 0

test-fast: $(STAMP)  ## the quick subset while developing: no slow, no slurm tests, 2 workers
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow and not slurm" -n 2

slurm-up:  ## a real single-node Slurm on this machine (as root; installs Debian's packages if missing)
	bash slurm/up.sh

slurm-down:  ## stop the daemons slurm-up started (and only those)
	bash slurm/down.sh

lint: $(STAMP)
	$(BIN)/ruff check .

clean:  ## remove the venv and caches; results/ is left alone
	rm -rf $(VENV) .pytest_cache .ruff_cache
