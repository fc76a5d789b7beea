# maskgate: every command a developer or CI needs. `make demo` and `make test` do their own setup.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# checkov and the SAM CLI pin dependencies that clash with the project's (and each other's):
# each lives in a tools venv of its own.
TOOLS  := .venv-tools
CHECKOV_VERSION := 3.3.30
SAM_VERSION := 1.170.0

.PHONY: install demo dev test test-fast unit lint fmt validate validate-sam validate-checkov validate-build bench clean FORCE

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
## The gates run side by side (the two tools venvs install at the same time on a clean clone); pytest
## runs alone after them, so no timing in a test shares the machine with a gate. pytest runs in two
## workers (pytest-xdist), a test file at a time each, so a file's module-scoped local stack stays in
## one worker: most of the suite waits on stacks and timers, not on a CPU.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint validate
	@$(BIN)/pytest -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/tooling tests/contract -q

## The quick loop while you work (about 2 minutes): lint, types, unit and contract tests; `make test` before you push.
test-fast: lint unit

## Format and fix what ruff can fix by itself.
fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(TOOLS)/checkov/.installed-stamp:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	@touch $@

$(TOOLS)/sam/.installed-stamp:
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_VERSION)"
	@touch $@

## Template gates: cfn-lint and checkov on template.yaml and on what SAM translates it to
## (generated roles and permissions). Every checkov skip is justified next to its resource.
## W1020 is ignored on the translated copy only: offline translation resolves parameters inside
## a Sub (LayerName) and leaves a Sub with no variables, which is SAM's output, not our template.
## Run side by side under `make -j`: the SAM checks, checkov, and the build check.
validate: validate-sam validate-checkov validate-build

.validate/translated.json: $(STAMP) template.yaml FORCE
	@mkdir -p .validate
	$(BIN)/python -m maskgate_local.template.translate > $@

validate-sam: $(TOOLS)/sam/.installed-stamp .validate/translated.json
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/sam/bin/sam validate --lint --template template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/cfn-lint --ignore-checks W1020 -- .validate/translated.json

validate-checkov: $(TOOLS)/checkov/.installed-stamp .validate/translated.json
	$(TOOLS)/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation -f template.yaml
	$(TOOLS)/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation -f .validate/translated.json

validate-build: $(TOOLS)/sam/.installed-stamp
	scripts/sam-build-check $(TOOLS)/sam/bin/sam

FORCE:

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(TOOLS) .validate .pytest_cache .mypy_cache .ruff_cache maskgate-demo
