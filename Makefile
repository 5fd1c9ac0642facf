# The two commands of the README:
#   make demo   - install everything, start the local stack, run the whole pipeline, print results
#   make test   - install everything and run every test (unit + integration against real services)
# Both are idempotent: installs are cached (.venv, .cache, ~/.m2, Go and pip caches).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv install install-test demo test test-unit test-java test-fast test-rules lint format stack-up stack-down stack-status bench clean

help:
	@echo "make demo        run the pipeline end to end on the local stack"
	@echo "make test        run every test (installs what is missing)"
	@echo "make test-unit   every test that needs no running service (under 2 minutes)"
	@echo "make test-fast   unit tests and quick integration tests (skips 'slow')"
	@echo "make test-rules  every rule's given/expect cases, in-process (no stack)"
	@echo "make lint        ruff check + format check"
	@echo "make stack-down  stop every process the project started"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -U pip
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

install: venv
	$(BIN)/fraudctl stack install

install-test: venv
	$(BIN)/fraudctl stack install --test-clients

demo: install
	$(BIN)/fraudctl demo

# the slowest tests are listed at the end of every run
DURATIONS := --durations=25

test: install-test lint test-java
	$(BIN)/python -m pytest $(DURATIONS) $(PYTEST_ARGS)

# Service-free tests on two workers (pytest-xdist, one test file each). Their in-process PyFlink
# JVMs (planning, replays) live seconds: compiled with C1 only (JVM_ARGS, read by PyFlink's
# gateway), they spend less CPU on compiling than C2 would save them.
test-unit: export JVM_ARGS = -XX:TieredStopAtLevel=1
test-unit: install lint test-java
	$(BIN)/python -m pytest -m 'not integration' -n 2 --dist loadfile $(DURATIONS) $(PYTEST_ARGS)

# the kafka-resuming connector's own tests (JUnit, driven like a Flink source subtask)
test-java:
	mvn -q -B -f connector/pom.xml test

test-fast: install-test
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

test-rules: venv
	$(BIN)/python -m pytest tests/rules $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stack-up: install
	$(BIN)/fraudctl stack up

stack-down: venv
	$(BIN)/fraudctl stack down

stack-status: venv
	$(BIN)/fraudctl stack status

bench: install
	$(BIN)/python -m benchmarks.run

clean: stack-down
	rm -rf .run target
