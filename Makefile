# Two commands for a new user (see README.md):
#   make demo   set everything up; run the example DAG in a real Airflow (try 1 fails late, try 2 resumes),
#               then the same resume from the command line
#   make test   set everything up, run the whole test suite
# Both create .venv on first use. Needs Python 3.11+ and Java 17.
#
#   make airflow        the demo's Airflow with the example DAGs, to explore in a browser (Ctrl-C stops it);
#                       PORT=8080 picks the UI's port (default: a free one)
#   make docs           the documentation site of docs/ (Sphinx, strict) in docs/_build/html
#   make package-check  build the wheel and sdist, install the wheel into a fresh venv and check it

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
PORT ?=
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: demo airflow test test-fast test-spark lint docs package-check venv clean benchmarks

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	@command -v java >/dev/null || { echo "Java 17 is needed (apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[spark,airflow,postgres,openlineage,celery,dev]"
	@touch $@

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[docs]"
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) examples/demo.py

airflow: venv
	$(PY) examples/local_airflow.py $(if $(PORT),--port $(PORT))

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

docs: $(VENV)/.docs-installed
	rm -rf docs/_build
	$(VENV)/bin/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html
	@echo "Documentation site: docs/_build/html/index.html"

package-check: venv
	PYTHON=$(PY) .ci/check-package

benchmarks: venv
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .ppf .pytest_cache .mypy_cache .ruff_cache spark-warehouse docs/_build dist
