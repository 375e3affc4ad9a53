# asyncagents developer tasks. `make help` lists them.
#
# Two virtual environments, never mixed:
#   $(VENV)      the project (python 3.11+): the package, tests, ruff, mypy, cfn-lint, aws-sam-translator
#   $(SAM_VENV)  aws-sam-cli alone (it pins its own boto3/pydantic)

VENV      ?= .venv
SAM_VENV  ?= .venv-sam
BOOTSTRAP_PYTHON ?= python3
FORMATION ?= formation.yaml
TEST_ARGS ?=
LOCAL_ARGS ?=
BUILD_ARGS ?=
BUILD_DIR ?= .aws-sam/build
DEPLOY_ARGS ?= --guided
BENCH     ?= bench/run.py
BENCH_ARGS ?=
# The one version source: the package's __version__ (the layer, GET /v1/health, the SAR listing).
VERSION   := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' layers/asyncagents/asyncagents/__init__.py)
S3_BUCKET ?=
PACKAGED  ?= $(BUILD_DIR)/packaged.yaml
PACKAGE_ARGS ?=
PUBLISH_ARGS ?=
SMOKE_ARGS ?=

VENV_ABS  := $(abspath $(VENV))
PY        := $(VENV_ABS)/bin/python
SAM       := $(abspath $(SAM_VENV))/bin/sam
# SAM only needs a region to validate/build: samconfig.toml sets one; never reach the instance metadata.
SAM_ENV   := AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

.DEFAULT_GOAL := help
.PHONY: help venv sam-venv browser lint format test fuzz build validate params deploy package publish \
	release-baseline smoke local bench train-estimator clean

help:
	@echo "make venv       create $(VENV) and install the project with its dev extras"
	@echo "make sam-venv   create $(SAM_VENV) with aws-sam-cli"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make format     ruff format and ruff check --fix"
	@echo "make test       the whole pytest suite (TEST_ARGS='-m template' etc. to narrow)"
	@echo "make browser    install Debian's chromium if missing (the console's browser tests drive it)"
	@echo "make fuzz       schemathesis on the local stack, every check and the stateful phase (FUZZ_ARGS)"
	@echo "make build      sam build (no Docker), validating $(FORMATION) into the layer"
	@echo "make validate   sam validate --lint"
	@echo "make params     the template parameters derived from $(FORMATION)"
	@echo "make deploy     build, then sam deploy $(DEPLOY_ARGS) with those parameters"
	@echo "make package    build, then sam package to S3_BUCKET=... (the publishable template: $(PACKAGED))"
	@echo "make publish    package, then sam publish version $(VERSION) to the Serverless Application Repository"
	@echo "make smoke      check a deployed stack: API=https://... CLIENT_KEY=... [ADMIN_KEY=...] [WEBHOOK_URL=...] [USER_ID=...]"
	@echo "make release-baseline  keep this template as releases/$(VERSION)/ (the next upgrade's baseline)"
	@echo "make local      run the local stack (moto, same code and state machine)"
	@echo "make bench      run the benchmark ($(BENCH))"
	@echo "make train-estimator  train the estimator's text model on bench/estimator_dev*.yaml (scikit-learn)"

# The environments are made on first use (stamp files), so `make test` and `make local` work on a
# fresh clone, and again whenever pyproject.toml changes.
VENV_STAMP := $(VENV)/.installed
SAM_STAMP  := $(SAM_VENV)/.installed
# A python3.12 that really runs (a pyenv shim may exist without the version selected), else python3.
SAM_BOOTSTRAP := $(shell for p in python3.12 python3; do $$p -c 'import sys' >/dev/null 2>&1 && { command -v $$p; break; }; done)

venv: $(VENV_STAMP)
sam-venv: $(SAM_STAMP)

$(VENV_STAMP): pyproject.toml layers/asyncagents/requirements.txt
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(SAM_STAMP):
	$(SAM_BOOTSTRAP) -m venv $(SAM_VENV)
	$(abspath $(SAM_VENV))/bin/python -m pip install --quiet --upgrade pip
	$(abspath $(SAM_VENV))/bin/python -m pip install --quiet aws-sam-cli
	touch $@

lint: $(VENV_STAMP)
	$(VENV_ABS)/bin/ruff check .
	$(VENV_ABS)/bin/ruff format --check .
	$(VENV_ABS)/bin/mypy

format: $(VENV_STAMP)
	$(VENV_ABS)/bin/ruff format .
	$(VENV_ABS)/bin/ruff check --fix .

# The console's browser tests drive the system's Chromium (Debian's package): installed here when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "error: the console's browser tests need Chromium: apt-get install chromium (as root)" >&2; exit 2; fi

test: $(VENV_STAMP) $(SAM_STAMP) browser
	$(VENV_ABS)/bin/pytest -n 2 --dist loadgroup -q -rfE $(TEST_ARGS)

# Schemathesis against the local stack, longer than the suite's run (tests/e2e/test_fuzz.py).
FUZZ_ARGS ?= --max-examples 100
fuzz: $(VENV_STAMP)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=true \
		$(VENV_ABS)/bin/python -m tests.fuzz.run $(FUZZ_ARGS)

# The layer's Makefile (layers/asyncagents/Makefile) validates the formation with $(PYTHON) and ships
# it as /opt/formation.json; SAM runs it from a scratch copy, hence the absolute paths.
build: $(VENV_STAMP) $(SAM_STAMP)
	@test -f "$(FORMATION)" || { echo "error: formation file '$(FORMATION)' not found (set FORMATION=path/to/formation.yaml)" >&2; exit 2; }
	$(SAM_ENV) ASYNCAGENTS_FORMATION="$(abspath $(FORMATION))" PYTHON="$(PY)" PATH="$(VENV_ABS)/bin:$$PATH" \
		$(SAM) build --build-dir "$(BUILD_DIR)" $(BUILD_ARGS)
	# The formation's schedules become resources of the built template (sam deploy reads it).
	$(PY) -m asyncagents.build_schedules "$(FORMATION)" "$(BUILD_DIR)/template.yaml"

validate: $(SAM_STAMP)
	$(SAM_ENV) $(SAM) validate --lint

params: $(VENV_STAMP)
	@$(PY) -m asyncagents.cli params $(FORMATION)

deploy: build
	params="$$($(PY) -m asyncagents.cli params $(FORMATION))" && test -n "$$params" && \
		$(SAM_ENV) $(SAM) deploy $(DEPLOY_ARGS) --parameter-overrides $$params

# The Serverless Application Repository: the built template, its code, LICENSE and README uploaded to
# S3_BUCKET (a bucket in your account that the repository may read: README, "Publish").
package: build
	@test -n "$(S3_BUCKET)" || { echo "error: set S3_BUCKET=<bucket> (sam package uploads the code, LICENSE and README there)" >&2; exit 2; }
	$(SAM_ENV) $(SAM) package --template-file "$(BUILD_DIR)/template.yaml" --s3-bucket "$(S3_BUCKET)" \
		--output-template-file "$(PACKAGED)" $(PACKAGE_ARGS)

publish: package
	$(SAM_ENV) $(SAM) publish --template "$(PACKAGED)" --semantic-version "$(VERSION)" $(PUBLISH_ARGS)

# When a release is cut: its template becomes the baseline the upgrade test compares the next one against.
# Never over an existing baseline: a failing upgrade test is fixed in the template, not by moving the baseline.
release-baseline:
	@test -n "$(VERSION)" || { echo "error: no __version__ found in layers/asyncagents/asyncagents/__init__.py" >&2; exit 2; }
	@test ! -e "releases/$(VERSION)/template.yaml" || { echo "error: releases/$(VERSION)/template.yaml exists: bump __version__ first" >&2; exit 2; }
	mkdir -p "releases/$(VERSION)" && cp template.yaml "releases/$(VERSION)/template.yaml"

# The end-to-end checks a user cares about, against any deployed stack (or the local one).
smoke: $(VENV_STAMP)
	@test -n "$(API)" || { echo "error: set API=https://<api id>.execute-api.<region>.amazonaws.com (the ApiUrl output)" >&2; exit 2; }
	@# @: the keys are not echoed (CI logs); unset, the environment's ASYNCAGENTS_* keys are used
	@$(if $(CLIENT_KEY),ASYNCAGENTS_CLIENT_KEY="$(CLIENT_KEY)") $(if $(ADMIN_KEY),ASYNCAGENTS_ADMIN_KEY="$(ADMIN_KEY)") \
		$(PY) -m asyncagents.smoke --api "$(API)" $(if $(WEBHOOK_URL),--webhook-url "$(WEBHOOK_URL)") \
		$(if $(USER_ID),--user-id "$(USER_ID)") $(SMOKE_ARGS)

local: $(VENV_STAMP)
	$(PY) -m asyncagents.local $(LOCAL_ARGS)

bench: $(VENV_STAMP)
	@test -f "$(BENCH)" || { echo "error: benchmark script '$(BENCH)' not found (set BENCH=...)" >&2; exit 2; }
	$(PY) $(BENCH) $(BENCH_ARGS)

# The weights land in the package (asyncagents/domain/workload/text_model.json); measure them with
# `make bench BENCH=bench/estimator.py`. scikit-learn is only needed here, never at run time.
train-estimator: $(VENV_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[train]"
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(PY) bench/estimator_train.py

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
