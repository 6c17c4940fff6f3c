# Two commands for a new user (see README.md):
#   make demo   set everything up, run the example pipeline: it fails late, then resumes from its checkpoint
#   make test   set everything up, run the whole test suite
# Both create .venv on first use. Needs Python 3.11+ and Java 17.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: demo test test-fast test-spark lint venv clean benchmarks

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	@command -v java >/dev/null || { echo "Java 17 is needed (apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[spark,airflow,postgres,openlineage,dev]"
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) examples/demo.py

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest tests/unit -m "not slow" $(PYTEST_ARGS)

test-spark: venv
	$(PY) -m pytest tests/unit tests/spark $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

benchmarks: venv
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .ppf .pytest_cache .mypy_cache .ruff_cache spark-warehouse
