# Suivi: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# checkov (deploy/k8s's security checks, tests/deploy) in its own environment: it pins packaging<24,
# which pytest 9 cannot take.
CHECKOV := checkov==3.3.30

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet '$(CHECKOV)'
	ln -sf ../checkov/bin/checkov $(VENV)/bin/checkov
	touch $(STAMP)

install: $(STAMP) ## Create the virtual environment and install Suivi with its development tools

run: $(STAMP) ## Start NATS, PostgreSQL (unless NATS_URL/DATABASE_URL are set), every service and demo data
	$(PY) -m devtools.run

test: $(STAMP) ## Run every test (real NATS JetStream, PostgreSQL and headless Chromium)
	$(PY) -m pytest

lint: $(STAMP) ## ruff, mypy --strict and the import contracts (services never import each other)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services devtools
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: $(STAMP) ## Fill the running system (make run) with 18 months of realistic past cases, through the import
	$(PY) -m devtools.history

token: ROLE ?= agent
token: SERVICE ?= urbanisme
token: $(STAMP) ## Print a development agent token: make token ROLE=agent SERVICE=urbanisme [AGENT=id]
	@$(PY) -m devtools.token --role $(ROLE) --service $(SERVICE) $(if $(AGENT),--agent $(AGENT))

bench: $(STAMP) ## Measure every performance figure beside its baseline (bench-results/latest.md)
	$(PY) -m devtools.bench

clean: ## Remove the virtual environment and local data (.data/)
	rm -rf $(VENV) .data

.PHONY: help install run test lint format bench clean token demo
