# One command for the main job, one for the tests. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,tpu]"
	touch $(STAMP)

# The main job: a small end-to-end instruction-tuning run on bundled data, on CPU.
run: $(STAMP)
	$(PY) -m flan_jax.cli main

# The whole test suite on a CPU mesh of 8 fake devices.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

bench: $(STAMP)
	$(PY) bench/packing.py
	$(PY) bench/train_throughput.py --hf

clean-venv:
	rm -rf $(VENV)
