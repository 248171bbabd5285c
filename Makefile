# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU wheel that lies on this machine's disk; users with a CUDA torch already installed keep theirs.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -q
DEMO_TRAIN_STEPS ?= 20

.PHONY: install test test-integration demo bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# pytest's exit 5 (no test collected, e.g. a PYTEST_ARGS that selects nothing) is said, not a failure
test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] || exit $$rc; \
	  echo "make test: pytest collected no test (exit 5)"; }

# The tests that need real parts (ComfyUI 0.3.64 in .comfyui/, Chromium, playwright-core in .venv-node/):
# installs what is missing, then runs them with 0 skipped (scripts/test_integration.sh; README, Testing).
test-integration:
	bash scripts/test_integration.sh

demo: install
	$(PY) -m training.demo --out demo_out --train-steps $(DEMO_TRAIN_STEPS)

bench: install
	OMP_NUM_THREADS=2 $(PY) -m benchmarks.bench_scorer --prompt short
	OMP_NUM_THREADS=2 $(PY) -m benchmarks.bench_scorer --prompt long
	OMP_NUM_THREADS=1 $(PY) -m benchmarks.bench_grpo

.PHONY: test-floors
# The dependency-heavy tests on exactly requirements-min.txt (the declared floors), in .venv-floors.
FLOORS_PYTEST_ARGS ?=
test-floors:
	scripts/test_floors.sh $(FLOORS_PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache
