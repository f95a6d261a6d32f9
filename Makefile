# Two entry points, each doing its own set-up on a fresh machine (Debian, Python 3.11, registries only):
#   make main   installs the package and runs the main job on the embedded data
#   make test   installs the package with its dev tools and runs the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/main

.PHONY: main test install install-dev readme docs

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: the 2.13.0 CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
$(VENV)/.installed: $(BIN)/python settings.ini setup.py
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	# geoclip ships GeoCLIP's pretrained location-encoder weights (the probes' baseline); --no-deps because it requires
	# torchvision, whose PyPI wheels swap CPU torch for a CUDA build. Its location encoder needs only torch, numpy, pandas.
	$(BIN)/pip install -q --no-deps geoclip==1.3.0
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# the browser tests drive Debian's Chromium through Playwright (never `playwright install`, which downloads a browser)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromium:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

main: install
	$(BIN)/location-tying reproduce --out $(OUT)

test: install-dev /usr/bin/chromium
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed offline)
readme: install-dev
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --TemplateExporter.exclude_input=True \
		--TemplateExporter.exclude_output=True --output-dir . --output README

# the docs site, rendered offline into _docs/ (nbdev_proc_nbs + nbconvert; publishing uses nbdev_docs with Quarto,
# which cannot be installed here); tests/test_docs.py checks every page in Chromium
docs: install-dev
	$(BIN)/python tools/docs.py
