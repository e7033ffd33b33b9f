# mediagen -- the two commands a newcomer needs are `make demo` and `make test`.
# Everything else here is what those two depend on. Every target installs what it needs.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins an old boto3: it gets its own virtual environment; the infra tests run its binary.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test synth lint bench soak lock clean help

help:
	@echo "make demo   -- run the sample jobs through the whole pipeline locally (moto + sandbox); outputs in demo-output/"
	@echo "make test   -- install everything and run the whole test suite"
	@echo "make synth  -- synthesize the CDK app into cdk.out/ (no AWS account needed)"
	@echo "make lint   -- ruff + mypy"
	@echo "make bench  -- the benchmark table (cold starts, catalog, submit batch, package sizes); not part of make test"
	@echo "make lock   -- re-resolve the Lambda layer's lock file (infra/layer/requirements.lock) from pyproject.toml"
	@echo "make soak   -- 1,000 jobs with duplicates, provider and AWS-side faults through the local stack; checks the spend invariants (~18 min on 2 cores)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# The local stack runs the state machine definition that the CDK app synthesizes (no Lambda bundling
# needed for that, so it is skipped here: see infra/app.py).
cdk.out/.local: $(STAMP) $(shell find infra -name '*.py' 2>/dev/null)
	MEDIAGEN_SKIP_BUNDLING=1 $(BIN)/python infra/app.py
	touch $@

demo: $(STAMP) cdk.out/.local
	$(BIN)/mediagen demo --output-dir demo-output

test: $(STAMP) node_modules/.installed $(CHECKOV_STAMP)
	$(BIN)/ruff check shared functions infra tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

synth: $(STAMP) node_modules/.installed
	npx cdk synth --quiet

bench: $(STAMP) node_modules/.installed
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/persist_large.py --size 1GiB

soak: $(STAMP) cdk.out/.local
	$(BIN)/python benchmarks/soak.py --jobs 1000

# The Lambda layer's lock: [project].dependencies resolved for the runtime (CPython 3.12, manylinux2014, wheels
# only) with every artifact's hash. One file serves both architectures: the x86_64 and aarch64 resolutions must
# agree (checked here), and the hashes cover every wheel of each pinned version.
LAYER_LOCK := infra/layer/requirements.lock
UV_LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.12 --only-binary :all: \
	--generate-hashes --custom-compile-command 'make lock'
lock: $(STAMP)
	$(UV_LOCK) --upgrade --python-platform x86_64-manylinux2014 --output-file $(LAYER_LOCK)
	tmp=$$(mktemp) && $(UV_LOCK) --python-platform aarch64-manylinux2014 --output-file $$tmp && \
	  { diff -u $(LAYER_LOCK) $$tmp || { echo "x86_64 and aarch64 resolve differently: $$tmp"; exit 1; }; } && rm -f $$tmp

lint: $(STAMP)
	$(BIN)/ruff check shared functions infra tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out demo-output .pytest_cache
