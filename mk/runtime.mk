# Local Lambda runtime: the Invoke API on loopback (see "Local runtime vs real Lambda" in README.md).
PORT ?= 9009
# Lambda's Python and what it runs with, for Python 3.13 (see local_runtime/lambda_python.py):
# .lambda313/runtime = awslambdaric (Lambda's /var/runtime), .lambda313/layer = requirements.txt.
LAMBDA_HOME  := .lambda313
LAMBDA_STAMP := $(LAMBDA_HOME)/.installed-$(shell cat requirements.txt requirements-lambda-runtime.txt | cksum | cut -d' ' -f1)

.PHONY: serve lambda-python
serve: install lambda-python ## run the local Invoke API on 127.0.0.1 (PORT=9009)
	$(PY) invoke.py serve --port $(PORT)

lambda-python: $(LAMBDA_STAMP) ## install awslambdaric + the handler's deps for Python 3.13 (found on PATH or via pyenv)

$(LAMBDA_STAMP): requirements.txt requirements-lambda-runtime.txt | install
	@py313=$$($(PY) -m local_runtime.lambda_python) || exit 1; \
	echo "installing awslambdaric and requirements.txt for $$py313 into $(LAMBDA_HOME)/"; \
	rm -rf $(LAMBDA_HOME).tmp && mkdir -p $(LAMBDA_HOME).tmp && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --target $(LAMBDA_HOME).tmp/runtime -r requirements-lambda-runtime.txt && \
	$$py313 -m pip install -q --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
	  --target $(LAMBDA_HOME).tmp/layer -r requirements.txt && \
	rm -rf $(LAMBDA_HOME) && mv $(LAMBDA_HOME).tmp $(LAMBDA_HOME) && touch $@

# Everything that starts an execution environment needs Lambda's Python.
test-deps demo invoke: lambda-python
