# spotreg: developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the scripts find the venv through this
export SPOTREG_VENV := $(VENV)

# extra arguments: make test PYTEST_ARGS='-k bucket'; make images IMAGES_ARGS=--force
PYTEST_ARGS ?=
IMAGES_ARGS ?=
VERIFY_ARGS ?=

.PHONY: help venv deps images lint test verify clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv and install the project with its test and dev extras

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# reinstall whenever pyproject.toml changes; the stamp is written only after a successful install
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test,dev]'
	touch $@

deps: ## install missing Debian packages (root), or say which are missing
	scripts/ensure-debian-packages.sh

images: venv ## build the stack's images from Debian packages (starts a Docker engine if needed)
	scripts/with-docker-engine.sh scripts/build-images.sh $(IMAGES_ARGS)

lint: venv ## ruff and mypy
	scripts/lint.sh

# One engine session for the whole run: the engine must stay up while the tests use it.
test: deps venv ## the offline gate: images, lint, every suite (what CI runs)
	scripts/with-docker-engine.sh scripts/run-tests.sh $(PYTEST_ARGS)

verify: deps venv ## spotreg verify --offline, with the images built and an engine up
	scripts/with-docker-engine.sh scripts/run-verify.sh $(VERIFY_ARGS)

clean: ## remove what runs wrote (reports/README.md stays) and the caches
	if [[ -d reports ]]; then find reports -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +; fi
	find . -path ./$(VENV) -prune -o -type d \
		\( -name __pycache__ -o -name .pytest_cache -o -name .mypy_cache -o -name .ruff_cache \
		   -o -name .hypothesis -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	rm -rf build dist

distclean: clean ## clean, and remove the venv too
	rm -rf $(VENV)
