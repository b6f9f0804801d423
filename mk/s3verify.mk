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
VERSITYGW_BUILT   := $(VERSITYGW_DIR)/versitygw
VERSITYGW         := $(VERSITYGW_BUILT)

# The sandbox's S3 without Docker (`make up` on a machine without an engine, or
# `make verifier-up` anywhere): versitygw on S3_ADDR with its web console on
# CONSOLE_ADDR, the same ports and credentials as the compose MinIO, so
# `make seed` / `make invoke` work unchanged. tools/local_s3.py does the work
# (credentials from the environment / .env / .env.example, bucket, pid record).
# LOCAL_S3=native forces it even where Docker runs; LOCAL_S3=docker forces compose.
VERIFIER_ADDR     ?= 127.0.0.1:9000
S3_ADDR           ?= $(VERIFIER_ADDR)
CONSOLE_ADDR      ?= 127.0.0.1:9001
S3_DATA           ?= .s3-data
LOCAL_S3          ?= auto
# The S3 event bridge (local_dev/s3_bridge.py): make up starts it before the S3 server, which
# sends it every upload; it invokes the function through make serve's Invoke API (PORT).
BRIDGE_ADDR       ?= 127.0.0.1:9010
BRIDGE_OPTIONS     = --bridge-addr="$$BRIDGE_ADDR" --invoke-url="http://127.0.0.1:$${PORT:-9009}"
LITERAL_VARS += S3_DATA S3_ADDR CONSOLE_ADDR VERIFIER_ADDR LOCAL_S3 VERSITYGW BRIDGE_ADDR

.PHONY: s3-verifier verifier-up verifier-down native-up native-down minio test-deps

##@ Local S3

# The path names the pin, so a new pin is a new file (built once) and the old
# one is never mistaken for it. Built into a scratch dir and moved into place,
# so an interrupted build never leaves a half-written binary to be "reused".
$(VERSITYGW_BUILT):
	@command -v go >/dev/null 2>&1 || { echo "s3-verifier: needs the Go toolchain (https://go.dev/dl/) to build versitygw $(VERSITYGW_VERSION)" >&2; exit 1; }
	@echo "building versitygw $(VERSITYGW_VERSION) (once, ~2 min) into $(VERSITYGW_DIR)"
	@rm -rf "$(VERSITYGW_DIR)/.build" && mkdir -p "$(VERSITYGW_DIR)/.build"
	GOBIN="$(VERSITYGW_DIR)/.build" CGO_ENABLED=0 go install $(VERSITYGW_MODULE)@$(VERSITYGW_VERSION)
	@mv -f "$(VERSITYGW_DIR)/.build/versitygw" "$@" && rmdir "$(VERSITYGW_DIR)/.build"

s3-verifier: $(VERSITYGW_BUILT) ## build the signature-verifying S3 (versitygw) once; prints its path
	@echo "$(VERSITYGW_BUILT)"

# The s3verify tests skip (saying why) without the binary; with Go installed,
# `make test` builds it first so they run.
test-deps: $(if $(shell command -v go),s3-verifier)

# Go is checked first, so a machine with neither Docker nor Go gets one line
# naming both fixes instead of a compiler error. A shell snippet rather than a
# sub-make, so `make up` reports a failure once, not once per make level. The
# settings come from the environment (LITERAL_VARS); a VERSITYGW given by the
# user is a binary to run, never a target to build.
NATIVE_UP = if [ ! -x "$$VERSITYGW" ] && ! command -v go >/dev/null 2>&1; then \
	  echo "make up: no Docker engine answers, and the native S3 (versitygw) needs Go to build once: install Go (https://go.dev/dl/) or start Docker" >&2; exit 1; fi; \
	{ [ -f "$(STAMP)" ] || echo "installing .venv first (once, about a minute)"; } && \
	$(MAKE) -s --no-print-directory install $(if $(filter file,$(origin VERSITYGW)),"$(VERSITYGW_BUILT)") && \
	$(PY) tools/local_s3.py up --binary="$$VERSITYGW" --data="$$S3_DATA" --s3-addr="$$S3_ADDR" --console-addr="$$CONSOLE_ADDR" $(BRIDGE_OPTIONS)

native-up:
	@$(PYTHON) tools/local_s3.py env
	@$(NATIVE_UP)

# Only a pid that is still this versitygw (same data directory) is signalled.
native-down:
	@$(PYTHON) tools/local_s3.py down --data="$$S3_DATA"

verifier-up: native-up ## native versitygw + console (what make up runs without Docker), even where Docker runs

verifier-down: native-down ## stop the versitygw started by make up / verifier-up (keeps .s3-data/)

minio: ## explain why MinIO is not built here (use make verifier-up)
	@echo "make minio: cannot build MinIO here (the Go module proxy refuses github.com/minio/minio and its forks); use make verifier-up (versitygw, verifies SigV4) or MINIO_IMAGE with make up" >&2; exit 1
