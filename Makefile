# maskgate: every command a developer or CI needs. `make demo` and `make test` do their own setup.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo dev test unit lint validate bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "maskgate needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## The main job: the local stack, one image through both ways in, masks and a verified webhook.
demo: $(STAMP)
	$(BIN)/maskgate demo

## The local stack in the foreground (Ctrl-C stops it).
dev: $(STAMP)
	$(BIN)/maskgate dev

## Every test and gate: lint, types, template lint, then pytest (unit, contract, integration, e2e).
test: lint validate
	@$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/contract -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

validate: $(STAMP)
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/cfn-lint template.yaml

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache maskgate-demo
