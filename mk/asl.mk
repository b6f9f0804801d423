# asl-validator (npm, Apache-2.0) checks statemachine/*.asl.json in `make test`
# (tests/tooling/test_fanout.py). Pinned by tools/asl/package-lock.json and installed
# with `npm ci` into tools/asl/node_modules/, never globally. Included by the
# Makefile; docs_apt (Debian packages as root) comes from mk/docs.mk.

ASL_DIR   := tools/asl
ASL_STAMP := $(ASL_DIR)/node_modules/.installed

.PHONY: asl-validator asl-node test-deps

##@ Test and lint

asl-node:
	$(call docs_apt,nodejs npm,node:nodejs npm:npm)

$(ASL_STAMP): $(ASL_DIR)/package.json $(ASL_DIR)/package-lock.json | asl-node
	@echo "installing asl-validator from $(ASL_DIR)/package-lock.json (npm ci)" >&2
	@npm ci --prefix $(ASL_DIR) --no-audit --no-fund --loglevel=error >&2
	@touch $@

asl-validator: $(ASL_STAMP) ## install the pinned ASL validator the state machine tests run (npm ci, local)

test-deps: asl-validator
