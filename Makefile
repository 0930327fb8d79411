# lintx: `make figures` builds every figure and Table 1; `make test` runs the test suite.
# Both create (or reuse) the virtual environment .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PROFILE ?= fast
BUILD := build
# papermill runs from the repository root so the notebooks' data/ and figures/ paths resolve there
# extra notebook parameters, e.g. PAPERMILL_ARGS="-p train_missing False"
PAPERMILL_ARGS ?=
PAPERMILL = $(PY) -m papermill --cwd . -p profile $(PROFILE) $(PAPERMILL_ARGS) --progress-bar

.PHONY: venv test bench clean figures theory table1 fig1 fig2 fig3 fig4 fig5 fig6 fig7 data

# The environment is rebuilt when the pins change (pyproject.toml, requirements.lock).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	@touch $@

venv: $(STAMP)

# Two pytest workers (pytest-xdist), one per core, each with single-threaded XLA.
test: $(STAMP)
	XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" $(PY) -m pytest -q -n 2 --dist loadgroup

bench: $(STAMP)
	$(PY) benchmarks/train_step.py

# Every figure and Table 1. First the grid runner trains any checkpoint of seed 0 that the notebooks need
# and data/ lacks (two processes, one per core: faster than the notebooks training one model at a time;
# with the shipped cache it has nothing to do), then the notebooks run (in parallel under make -j2).
# A single target (make fig5) trains what it lacks itself.
figures: $(STAMP)
	@echo "== training what data/$(PROFILE) lacks (seed 0 of the study)"; start=$$(date +%s); \
	$(PY) -m lintx train --profile $(PROFILE) --seeds 0 --workers 2 && \
	echo "== grid done in $$(( $$(date +%s) - start )) s"
	@$(MAKE) --no-print-directory table1 fig1 fig2 fig3 fig4 fig5 fig6 fig7 theory

# One rule for every notebook target: target -> notebook it executes into $(BUILD)/.
NOTEBOOK_theory := theory
NOTEBOOK_table1 := table1
NOTEBOOK_fig1 := fig1_loss_vs_layers
NOTEBOOK_fig2 := fig2_variance_profiles
NOTEBOOK_fig3 := fig3_categorical
NOTEBOOK_fig4 := fig4_full_weights
NOTEBOOK_fig5 := fig5_layer_readout
NOTEBOOK_fig6 := fig6_unadjusted_loss
NOTEBOOK_fig7 := fig7_layer_profiles

theory table1 fig1 fig2 fig3 fig4 fig5 fig6 fig7: $(STAMP)
	@mkdir -p $(BUILD)
	@echo "== building $@ (notebooks/$(NOTEBOOK_$@).ipynb, profile $(PROFILE))"; start=$$(date +%s); \
	$(PAPERMILL) notebooks/$(NOTEBOOK_$@).ipynb $(BUILD)/$(NOTEBOOK_$@).ipynb && \
	echo "== $@ built in $$(( $$(date +%s) - start )) s"

# Train every missing checkpoint of the study with $(PROFILE) (resumable: rerun to continue).
data: $(STAMP)
	$(PY) -m lintx train --profile $(PROFILE) --workers 2

# Build outputs only: never data/ (checkpoints) or figures/ (committed results).
clean:
	rm -rf $(BUILD) .pytest_cache
	find . -name __pycache__ -prune -not -path './$(VENV)/*' -exec rm -rf {} +
