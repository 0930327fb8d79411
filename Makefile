# lintx: `make figures` builds every figure and Table 1; `make test` runs the test suite.
# Both create (or reuse) the virtual environment .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PROFILE ?= brisk
BUILD := build
# papermill runs from the repository root so the notebooks' data/ and figures/ paths resolve there
# extra notebook parameters, e.g. PAPERMILL_ARGS="-p train_missing False" (they override the defaults below)
PAPERMILL_ARGS ?=
PAPERMILL = $(PY) -m papermill --cwd . -p profile $(PROFILE) $(NOTEBOOK_ARGS) $(PAPERMILL_ARGS) --progress-bar

.PHONY: venv test bench binder-check clean figures beyond theory table1 tails fig1 fig2 fig3 fig4 fig5 fig6 fig7 data

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

# Binder's limits here: a fresh venv from environment.yml, every notebook on one CPU under 2 GB, shipped cache
binder-check:
	$(PYTHON) benchmarks/binder_check.py

# Every figure and Table 1. First the grid runner trains any checkpoint of seed 0 that the notebooks need
# and data/ lacks (two processes, one per core: faster than the notebooks training one model at a time;
# with the shipped cache it has nothing to do), then the notebooks run (in parallel under make -j2; the two
# heaviest, table1's losses and fig2's profiles, first and side by side; the evaluation cache is locked per
# entry, so two notebooks never compute the same evaluation).
# A model that diverges after every retry is recorded and left out (Table 1 marks it), not a failed build.
# A single target (make fig5) trains what it lacks itself.
figures: $(STAMP)
	@echo "== training what data/$(PROFILE) lacks (seed 0 of the study)"; start=$$(date +%s); \
	$(PY) -m lintx train --profile $(PROFILE) --seeds 0 --workers 2 --diverged-ok && \
	echo "== grid done in $$(( $$(date +%s) - start )) s"
	@$(MAKE) --no-print-directory table1 fig2 fig1 fig3 fig7 fig5 fig6 fig4 theory tails

# One rule for every notebook target: target -> notebook it executes into $(BUILD)/.
NOTEBOOK_theory := theory
NOTEBOOK_table1 := table1
NOTEBOOK_tails := tails
NOTEBOOK_fig1 := fig1_loss_vs_layers
NOTEBOOK_fig2 := fig2_variance_profiles
NOTEBOOK_fig3 := fig3_categorical
NOTEBOOK_fig4 := fig4_full_weights
NOTEBOOK_fig5 := fig5_layer_readout
NOTEBOOK_fig6 := fig6_unadjusted_loss
NOTEBOOK_fig7 := fig7_layer_profiles

# PROFILE=quick also evaluates at reduced fidelity: 20,000 sequences per loss and per baseline tuning
# (instead of 100,000) and 2,000 per sigma of a per-variance profile (instead of 10,000).
ifeq ($(PROFILE),quick)
EVAL_ARGS := -p num 20000 -p tune_num 20000 -p selection_num 5000
SIGMA_ARGS := -p profile_num 2000
endif
table1 fig1 fig4 fig5: NOTEBOOK_ARGS = $(EVAL_ARGS)
# the tails figure reads figures/table1.csv
tails: table1
tails: NOTEBOOK_ARGS = -p num $(if $(filter quick,$(PROFILE)),20000,100000)
fig2 fig3 fig6 fig7: NOTEBOOK_ARGS = $(EVAL_ARGS) $(SIGMA_ARGS)

theory table1 tails fig1 fig2 fig3 fig4 fig5 fig6 fig7: $(STAMP)
	@mkdir -p $(BUILD)
	@echo "== building $@ (notebooks/$(NOTEBOOK_$@).ipynb, profile $(PROFILE))"; start=$$(date +%s); \
	$(PAPERMILL) notebooks/$(NOTEBOOK_$@).ipynb $(BUILD)/$(NOTEBOOK_$@).ipynb && \
	echo "== $@ built in $$(( $$(date +%s) - start )) s"

# docs/beyond.md (notebooks/beyond.ipynb): multi-head models and other problem sizes, by the method with nothing
# tuned. The runner first trains what data/$(PROFILE) lacks (seed 0; one head and d = 10, n = 20 are the study's
# own models), then the notebook evaluates and writes the page. Not part of `make figures`. The grids are cut to
# their 6 CPU-hours, seeds first, then FULL with 4 heads on {1,3}, d = 20, n = 40 at sigma_max = 1 and FULL with
# 5 layers there (benchmarks/RESULTS.md, "Beyond the paper"); the page marks what is not trained.
beyond: NOTEBOOK_ARGS = -p train_missing False
BEYOND_TRAIN = $(PY) -m lintx train --profile $(PROFILE) --seeds 0 --no-deep-u5 --workers 2 --diverged-ok
beyond: $(STAMP)
	$(BEYOND_TRAIN) --heads 2 --variants diag full --columns u5 c13
	$(BEYOND_TRAIN) --heads 4 --variants diag --columns u5 c13
	$(BEYOND_TRAIN) --heads 4 --variants full --columns u5
	@for s in 5x10 10x10 10x40; do $(BEYOND_TRAIN) --d $${s%x*} --n $${s#*x} --columns u1 u5 c13 --depths 1-5 || exit 1; done
	$(BEYOND_TRAIN) --d 20 --n 40 --columns u5 c13 --variants gdpp diag --depths 1-5
	$(BEYOND_TRAIN) --d 20 --n 40 --columns u5 c13 --variants full --depths 1-4
	@mkdir -p $(BUILD)
	$(PAPERMILL) notebooks/beyond.ipynb $(BUILD)/beyond.ipynb

# Train every missing checkpoint of the study with $(PROFILE) (resumable: rerun to continue).
data: $(STAMP)
	$(PY) -m lintx train --profile $(PROFILE) --workers 2

# Build outputs only: never data/ (checkpoints) or figures/ (committed results).
clean:
	rm -rf $(BUILD) .pytest_cache
	find . -name __pycache__ -prune -not -path './$(VENV)/*' -exec rm -rf {} +
