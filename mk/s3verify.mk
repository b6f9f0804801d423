# A local S3 that really checks signatures: versitygw (Apache-2.0, POSIX backend).
# Included by the Makefile; PY / PYTHON / install come from there.
#
# Why not MinIO (issue 3): the Go module proxy reachable here refuses
# github.com/minio/minio (AGPL) and its forks, so it cannot be built. moto
# serves tampered and expired presigned URLs with 200, so it cannot prove
# anything about signing; versitygw verifies SigV4, presigned query auth too.
#
# The binary is built once per pin into a cache outside the repo (it is ~60 MB
# and takes ~2 minutes to compile) and reused by `make test` and tests/verifying_s3.py,
# which reads VERSITYGW_VERSION from this file: keep the pin on one line.

VERSITYGW_VERSION := v1.8.0
VERSITYGW_MODULE  := github.com/versity/versitygw/cmd/versitygw
# Same rule as the shell's $${XDG_CACHE_HOME:-$$HOME/.cache}: unset or empty falls back.
VERSITYGW_DIR     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lambda-local-runner/versitygw/$(VERSITYGW_VERSION)
VERSITYGW         := $(VERSITYGW_DIR)/versitygw

# `make verifier-up` stands in for the compose MinIO: same port and credentials
# as .env.example, so `make seed` / `make invoke` work unchanged.
VERIFIER_ADDR     ?= 127.0.0.1:9000
VERIFIER_DATA     := .s3-data
VERIFIER_PID      := $(VERIFIER_DATA)/versitygw.pid
VERIFIER_LOG      := $(VERIFIER_DATA)/versitygw.log

.PHONY: s3-verifier verifier-up verifier-down minio test-deps

##@ Local S3

# The path names the pin, so a new pin is a new file (built once) and the old
# one is never mistaken for it. Built into a scratch dir and moved into place,
# so an interrupted build never leaves a half-written binary to be "reused".
$(VERSITYGW):
	@command -v go >/dev/null 2>&1 || { echo "s3-verifier: needs the Go toolchain (https://go.dev/dl/) to build versitygw $(VERSITYGW_VERSION)" >&2; exit 1; }
	@echo "building versitygw $(VERSITYGW_VERSION) (once, ~2 min) into $(VERSITYGW_DIR)"
	@rm -rf "$(VERSITYGW_DIR)/.build" && mkdir -p "$(VERSITYGW_DIR)/.build"
	GOBIN="$(VERSITYGW_DIR)/.build" CGO_ENABLED=0 go install $(VERSITYGW_MODULE)@$(VERSITYGW_VERSION)
	@mv -f "$(VERSITYGW_DIR)/.build/versitygw" "$@" && rmdir "$(VERSITYGW_DIR)/.build"

s3-verifier: $(VERSITYGW) ## build the signature-verifying S3 (versitygw) once; prints its path
	@echo "$(VERSITYGW)"

# The s3verify tests skip (saying why) without the binary; with Go installed,
# `make test` builds it first so they run.
test-deps: $(if $(shell command -v go),s3-verifier)

verifier-up: s3-verifier ## run versitygw on :9000 (minioadmin/minioadmin, data in .s3-data/) for make seed/invoke
	@mkdir -p "$(VERIFIER_DATA)/buckets"
	@if [ -f "$(VERIFIER_PID)" ] && kill -0 "$$(cat "$(VERIFIER_PID)")" 2>/dev/null; then \
	  echo "versitygw already running (pid $$(cat "$(VERIFIER_PID)")) on http://$(VERIFIER_ADDR)"; exit 0; fi; \
	ROOT_ACCESS_KEY=minioadmin ROOT_SECRET_KEY=minioadmin nohup "$(VERSITYGW)" \
	  --port "$(VERIFIER_ADDR)" --health /health --keep-alive --quiet \
	  posix "$(VERIFIER_DATA)/buckets" >"$(VERIFIER_LOG)" 2>&1 </dev/null & \
	echo $$! >"$(VERIFIER_PID)"; \
	for _ in $$(seq 100); do \
	  if ! kill -0 "$$(cat "$(VERIFIER_PID)")" 2>/dev/null; then \
	    rm -f "$(VERIFIER_PID)"; echo "versitygw exited (port $(VERIFIER_ADDR) taken?):" >&2; tail -5 "$(VERIFIER_LOG)" >&2; exit 1; fi; \
	  if $(PYTHON) -c "import urllib.request as u; u.urlopen('http://$(VERIFIER_ADDR)/health', timeout=1)" 2>/dev/null; then \
	    echo "versitygw up on http://$(VERIFIER_ADDR) (pid $$(cat "$(VERIFIER_PID)"), minioadmin/minioadmin, data $(VERIFIER_DATA)/buckets)"; exit 0; fi; \
	  sleep 0.1; \
	done; \
	echo "versitygw did not answer on http://$(VERIFIER_ADDR)/health within 10 s; see $(VERIFIER_LOG)" >&2; exit 1

# Only a pid that is still versitygw is signalled: a stale pid file must never
# take down whatever process reused the number.
verifier-down: ## stop the versitygw started by make verifier-up (keeps .s3-data/)
	@if [ ! -f "$(VERIFIER_PID)" ]; then echo "versitygw not running (no $(VERIFIER_PID))"; exit 0; fi; \
	pid=$$(cat "$(VERIFIER_PID)"); \
	if [ "$$(cat /proc/$$pid/comm 2>/dev/null)" = versitygw ]; then \
	  kill "$$pid"; for _ in $$(seq 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	  kill -0 "$$pid" 2>/dev/null && kill -9 "$$pid"; echo "versitygw stopped (pid $$pid)"; \
	else echo "versitygw not running (stale pid $$pid)"; fi; \
	rm -f "$(VERIFIER_PID)"

minio: ## explain why MinIO is not built here (use make verifier-up)
	@echo "make minio: cannot build MinIO here (the Go module proxy refuses github.com/minio/minio and its forks); use make verifier-up (versitygw, verifies SigV4) or MINIO_IMAGE with make up" >&2; exit 1
