# The whole command surface of the project. CI runs `make test` (via .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?= -n 2

.PHONY: help install demo test lint up down clean seed invoke

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install everything the project needs

demo: install ## run the whole job on an embedded S3 (no Docker, no AWS)
	$(PY) demo.py

test: install test-deps ## install what the tests need and run the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

up: ## local S3 + web console: MinIO in Docker if an engine answers, else native versitygw (API :9000, console :9001)
	@test -f .env || { sed '$(if $(filter-out 127.0.0.1:9000,$(S3_ADDR)),s|^S3_ENDPOINT_URL=.*|S3_ENDPOINT_URL=http://$(S3_ADDR)|)' .env.example >.env && \
	  echo "make up: wrote .env from .env.example (make seed / make invoke read it)"; }
	@if [ "$(LOCAL_S3)" = docker ] || { [ "$(LOCAL_S3)" = auto ] && docker info >/dev/null 2>&1; }; then \
	  S3_ADDR="$(S3_ADDR)" CONSOLE_ADDR="$(CONSOLE_ADDR)" docker compose up -d --wait && \
	  echo "MinIO (Docker) up: API http://$(S3_ADDR), console http://$(CONSOLE_ADDR)/ (log in with .env's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"; \
	else $(NATIVE_UP); fi

down: ## stop what make up started (the compose MinIO or the native versitygw; data kept)
	@$(MAKE) --no-print-directory native-down
	@if docker info >/dev/null 2>&1; then docker compose down; fi

clean: ## stop the local S3, drop its data (volume / .s3-data) and local build output
	@$(MAKE) --no-print-directory native-down
	-@if docker info >/dev/null 2>&1; then docker compose down -v; fi
	rm -rf $(if $(strip $(S3_DATA)),"$(S3_DATA)") dist build .pytest_cache

seed: install ## upload PDFs to BUCKET_NAME/PREFIX (reads .env)
	$(PY) seed.py

invoke: install ## run the handler once against .env's S3 (reads .env)
	$(PY) invoke.py

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
