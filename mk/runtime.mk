# Local Lambda runtime: the Invoke API on loopback (see "Local runtime vs real Lambda" in README.md).
# PORT reaches invoke.py as one argument (through the environment), so a value
# such as '0 --host 0.0.0.0' is refused by invoke.py instead of becoming options.
LITERAL_VARS += PORT DEBUG_PORT
export PORT ?= 9009

##@ Run

.PHONY: serve
serve: install ## run the local Invoke API on 127.0.0.1 (PORT=9009), reloading on save; DEBUG_PORT=5678 for a debugger
	$(PY) invoke.py serve --port "$$PORT" --watch $${DEBUG_PORT:+--debug-port "$$DEBUG_PORT"}

# Lambda's Python and what it runs with, for Python 3.13 (see local_runtime/lambda_python.py):
# .lambda313/runtime = awslambdaric (Lambda's /var/runtime), .lambda313/layer = requirements.lock
# (the zip's exact dependencies, hash-checked), .lambda313/tests = what the handler tests need on 3.13,
# .lambda313/debug = debugpy, on the import path of a --debug-port run only.
LAMBDA_HOME  := .lambda313
LAMBDA_STAMP := $(LAMBDA_HOME)/.installed-$(shell cat requirements.lock requirements-lambda-runtime.txt requirements-test313.txt requirements-lambda-debug.txt | cksum | cut -d' ' -f1)

.PHONY: lambda-python import-time
lambda-python: $(LAMBDA_STAMP) ## install awslambdaric + the zip's locked deps for Python 3.13 (found on PATH or via pyenv)

$(LAMBDA_STAMP): requirements.lock requirements-lambda-runtime.txt requirements-test313.txt requirements-lambda-debug.txt | install
	@py313=$$($(PY) -m local_runtime.lambda_python) || exit 1; \
	echo "==> installing awslambdaric and requirements.lock for $$py313 into $(LAMBDA_HOME)/" >&2; \
	rm -rf $(LAMBDA_HOME).tmp && mkdir -p $(LAMBDA_HOME).tmp && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --target $(LAMBDA_HOME).tmp/runtime -r requirements-lambda-runtime.txt && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --require-hashes --no-deps --target $(LAMBDA_HOME).tmp/layer -r requirements.lock && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --target $(LAMBDA_HOME).tmp/tests -r requirements-test313.txt && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --target $(LAMBDA_HOME).tmp/debug -r requirements-lambda-debug.txt && \
	rm -rf $(LAMBDA_HOME) && mv $(LAMBDA_HOME).tmp $(LAMBDA_HOME) && touch $@

# Everything that starts an execution environment needs Lambda's Python.
test-deps demo invoke serve: lambda-python

import-time: install lambda-python ## cold import of the x86_64 zip under 3.13, with vs without its bytecode
	$(PY) tools/package.py --arch x86_64
	$(PY) tools/zip_import_time.py

# Lambda's sandbox (local_runtime/sandbox.py) is built with bubblewrap: Debian's package, installed
# as root with apt like Chromium and Graphviz (mk/docs.mk), otherwise named. invoke.py --sandbox auto
# runs without it and says which guarantees are off; the tests run with it on.
.PHONY: sandbox-deps
sandbox-deps: ## Debian package Lambda's sandbox needs: bubblewrap
	$(call docs_apt,bubblewrap,bwrap:bubblewrap)

test-deps: sandbox-deps
