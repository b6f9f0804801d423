# The whole command surface of the project. CI runs `make test` (via .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?= -n 2
# No "Entering directory" lines from sub-makes: `make invoke > out.json` is the function's JSON only.
MAKEFLAGS += --no-print-directory

.PHONY: help install demo test test-fast lint up down clean seed invoke

# `make help` groups targets under the `##@ <section>` line above them (here and in mk/*.mk),
# sections in this order; a target's `## text` is its line.
HELP_SECTIONS := Start here|Local S3|Run|Test and lint|Bench and stress|Docs|AWS

##@ Start here

help: ## this list, grouped
	@awk -v order='$(HELP_SECTIONS)' ' \
	  FNR == 1 { section = "" } \
	  /^##@ / { section = substr($$0, 5); if (!(section in rows)) extra[++n_extra] = section; rows[section] = rows[section]; next } \
	  /^[a-zA-Z0-9_-]+:.*## / { name = $$0; sub(/:.*/, "", name); text = $$0; sub(/^[^#]*## /, "", text); \
	    if (section == "") section = "Other"; rows[section] = rows[section] sprintf("  make %-15s %s\n", name, text) } \
	  END { n = split(order, names, "|"); \
	    print "New here? make demo (the whole job, no Docker, no AWS), then make test. README.md explains the rest."; \
	    for (i = 1; i <= n; i++) if (rows[names[i]] != "") { printf "\n%s\n%s", names[i], rows[names[i]]; done[names[i]] = 1 } \
	    for (i = 1; i <= n_extra; i++) if (!(extra[i] in done) && rows[extra[i]] != "") printf "\n%s\n%s", extra[i], rows[extra[i]] }' \
	  $(MAKEFILE_LIST)

# Everything install prints goes to stderr, so `make invoke > out.json` stays pure JSON on a first run too.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || { echo "==> creating $(VENV) with $$($(PYTHON) --version 2>&1)" >&2 && $(PYTHON) -m venv $(VENV); }
	@echo "==> installing requirements-dev.txt and this project (editable) into $(VENV) (first time: about a minute; full log in $(VENV)/pip.log)" >&2
	@set -o pipefail; \
	{ $(PY) -m pip install --upgrade pip && $(PY) -m pip install -r requirements-dev.txt \
	  && $(PY) -m pip install --no-deps -e .; } 2>&1 | tee $(VENV)/pip.log \
	  | { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; } | cut -c1-110 >&2 \
	  || { echo "pip failed; the end of $(VENV)/pip.log:" >&2; tail -n 20 $(VENV)/pip.log >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv, install what the project needs and the project itself (pip install -e .)

demo: install ## run the whole job on an embedded S3 (no Docker, no AWS): seed, invoke, fetch the URLs
	@$(PY) demo.py

test: install test-deps ## install what the tests need and run the whole suite (CI runs this)
	$(PY) -m pytest $(PYTEST_ARGS)

##@ Test and lint

test-fast: install test-deps ## the suite without the slow end-to-end runs (-m "not slow"); make test runs them all
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

lint: install ## ruff, the import contracts between layers (lint-imports), mypy and vulture
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m vulture

##@ Local S3

# S3_ADDR, CONSOLE_ADDR, S3_DATA, LOCAL_S3 and VERSITYGW reach these recipes
# through the environment (LITERAL_VARS, mk/s3verify.mk), never pasted into a line.
up: ## local S3 + web console: MinIO in Docker if an engine answers, else native versitygw (API :9000, console :9001)
	@$(PYTHON) tools/local_s3.py env
	@if [ "$$LOCAL_S3" = docker ] || { [ "$$LOCAL_S3" = auto ] && docker info >/dev/null 2>&1; }; then \
	  $(PY) tools/local_s3.py bridge --data="$$S3_DATA" $(BRIDGE_OPTIONS) --allow-host="host.docker.internal:$${BRIDGE_ADDR##*:}" && \
	  S3_NOTIFICATION="$$($(PY) tools/local_s3.py notification)" BRIDGE_PORT="$${BRIDGE_ADDR##*:}" docker compose up -d --wait && \
	  echo "MinIO (Docker) up: API http://$$S3_ADDR, console http://$$CONSOLE_ADDR/ (log in with .env's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"; \
	else $(NATIVE_UP); fi

down: ## stop what make up started (the compose MinIO or the native versitygw; data kept)
	@$(MAKE) --no-print-directory native-down
	@if docker info >/dev/null 2>&1; then docker compose down; fi

clean: ## stop the local S3, drop its data (volume / .s3-data) and local build output
	@$(MAKE) --no-print-directory native-down
	-@if docker info >/dev/null 2>&1; then docker compose down -v; fi
	rm -rf -- $${S3_DATA:+"$$S3_DATA"} dist build .pytest_cache

seed: install ## upload PDFs (and those events/ name) to BUCKET_NAME/PREFIX (reads .env)
	@$(PY) seed.py

##@ Run

# EVENT reaches invoke.py as one argument through the environment (see LITERAL_VARS below).
LITERAL_VARS += EVENT
invoke: install ## run the handler once as template.yaml configures it, against .env's S3; EVENT=s3-object-created
	@$(PY) invoke.py $${EVENT:+--event "$$EVENT"}

# Each topic keeps its own targets in mk/*.mk; test-deps collects their
# system-level needs (each adds itself as a prerequisite).
.PHONY: test-deps
test-deps:

-include mk/*.mk

# Variables a user or a CI pipeline hands to tools (bucket names, prefixes, ARNs,
# DRY_RUN...; each mk/*.mk adds its own to LITERAL_VARS). make would expand a
# '$(shell ...)' inside such a value when exporting it, and a value pasted into
# a recipe line is parsed by the shell; instead each one is frozen as the exact
# text given and exported, and the tools read it from their environment.
define _literal_var
ifneq ($$(origin $(1)),undefined)
ifneq ($$(origin $(1)),file)
override $(1) := $$(value $(1))
endif
export $(1)
endif
endef
$(foreach var,$(sort $(LITERAL_VARS)),$(eval $(call _literal_var,$(var))))
