# Local Lambda runtime: the Invoke API on loopback (see "Local runtime vs real Lambda" in README.md).
# PORT reaches invoke.py as one argument (through the environment), so a value
# such as '0 --host 0.0.0.0' is refused by invoke.py instead of becoming options.
LITERAL_VARS += PORT
export PORT ?= 9009

##@ Run

.PHONY: serve
serve: install ## run the local Invoke API on 127.0.0.1 (PORT=9009)
	$(PY) invoke.py serve --port "$$PORT"
