# ptsnn: two commands do everything (see README):
#   make demo   - install the stack into .venv (first time only) and run the main job on the embedded default
#   make demo-ttfs - the second demo: a TTFS network on synthetic eye data, end to end
#   make test   - install (first time only) and run the test suite (what CI runs, via .ci/run)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo demo-ttfs smoke test test-all fuzz clean

setup:
	@bash scripts/setup_env.sh

# the whole pipeline on the embedded default: synthetic corpus -> train -> QAT -> convert (loihi2) ->
# Lava + fast simulator -> verify -> report (about 4 minutes on 2 cores once installed)
demo: setup
	$(VENV)/bin/ptsnn demo --out runs/demo

# the second demo, TTFS on eye data: synthetic near-eye sequences -> TTFS conv net (ReLU twin) -> convert
# (loihi2) -> quantized == fast simulator == Lava, spike time for spike time -> baselines -> TTFS report
# (1-2 minutes on 2 cores once installed)
demo-ttfs: setup
	$(VENV)/bin/ptsnn demo-ttfs --out runs/demo-ttfs

# 20 seconds: netx writer + Lava fixed_pt + fast simulator, spike for spike
smoke: setup
	$(VENV)/bin/ptsnn smoke --out runs/smoke

test: setup
	@bash scripts/run_tests.sh

# everything, the slow Lava runs included
test-all: setup
	@bash scripts/run_tests.sh -m "slow or not slow"

# fuzz every reader with fresh random inputs (hypothesis): FUZZ_EXAMPLES per reader and test, about
# 7 minutes for the default 1000 on 2 cores (the default test run does 20, derandomised); see docs/security.md
FUZZ_EXAMPLES ?= 1000
fuzz: setup
	PTSNN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PTSNN_FUZZ_RANDOM=1 bash scripts/run_tests.sh tests/test_fuzz_readers.py -q -s

clean:
	rm -rf runs .pytest_cache
