# The two commands a user types on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment first if it is missing (or older than pyproject.toml or
# constraints.txt, the exact versions of the packages whose numbers reach a committed figure).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hmrm-installed
# torch and torchvision must be a pair that imports together; these two do (CPU and CUDA, Python 3.10-3.12).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Downloads (face bank photos) and derived data live in git-ignored folders of the repository.
export HMRM_CACHE ?= $(CURDIR)/.cache/hmrm
export MPLBACKEND ?= Agg
SYNTHME ?= data/synthme

.PHONY: venv demo test test-fast test-browser figures doctor chapters clean-data help

help:
	@echo "make demo   - set up .venv if needed, build SynthME, run the main job (HMRM LOSO on SynthME: table + figures)"
	@echo "make test   - set up .venv if needed, run every test and notebook"
	@echo "make figures, make doctor, make test-fast (no notebooks), make chapters (sync .ipynb <-> .py, clear outputs), make clean-data"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	# facenet-pytorch pins torch<2.3, numpy<2 and Pillow<10.3 in its metadata but works with
	# current releases: install it without its pins (never run `pip check` here).
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hmrm synthme --out $(SYNTHME) --figure figures/synthme_montage.png
	$(VENV)/bin/hmrm demo --root $(SYNTHME)

# Every committed figure and table that a command measures on this machine (timings included): run it
# on an idle machine, then commit what changed. The SynthME montage is also redrawn by `make demo`.
figures: $(STAMP)
	$(VENV)/bin/hmrm synthme --out $(SYNTHME) --figure figures/synthme_montage.png
	$(VENV)/bin/hmrm efficiency --out figures/efficiency.md --batch 1 32 --repeats 5 --warmup 2 --input-size 112 --quiet
	$(PY) benchmarks/flow_bench.py --root $(SYNTHME) --table benchmarks/results/flow_parts/seed0.md --figure figures/flow_bench.png
	$(PY) -m hmrm.flow.facepairs --out figures/flow_pretraining_pairs.png

test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

# The flow explorer in JupyterLab in headless Chromium (Debian's chromium package, driven by Playwright;
# no browser download). Skipped by `make test` where Chromium or Playwright is missing.
test-browser: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,browser]' || echo "could not install playwright: the browser test will be skipped"
	$(PY) -m pytest tests/browser -p no:cacheprovider -rs

test-fast: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider

# Chapters are jupytext pairs: notebooks/NN_name.ipynb <-> notebooks/NN_name.py (percent format). Whichever
# of the two was saved last wins; outputs are cleared so that notebooks are committed without them.
chapters: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/[0-9]*.ipynb notebooks/solutions/*.ipynb notebooks/jobs/*.ipynb
	$(VENV)/bin/jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/[0-9]*.ipynb \
		notebooks/solutions/*.ipynb notebooks/jobs/*.ipynb

doctor: $(STAMP)
	$(VENV)/bin/hmrm doctor

clean-data:
	rm -rf $(SYNTHME) .cache
