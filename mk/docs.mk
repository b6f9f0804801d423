# The study site (docs/): graphs, generated page regions, measured timeline.
# Included by the Makefile; PYTHON / PY / install come from there.
# render.py and build_docs.py use only the standard library, so `make graphs`
# and `make docs` work on a clean clone before the virtualenv exists.

DOCS_DOTS := $(wildcard docs/graphs/*.dot)
DOCS_SVGS := $(DOCS_DOTS:.dot=.svg)

# apt-get install the Debian packages named by $(1) for any command in $(2) that is missing.
define docs_apt
	@missing=""; for pair in $(2); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else \
	    echo "missing$$missing: run as root (or with sudo): apt-get install -y $(1)" >&2; exit 1; \
	  fi; \
	fi
endef

.PHONY: graphs docs timeline docs-deps docs-graphviz test-deps

##@ Docs

docs-graphviz:
	$(call docs_apt,graphviz,dot:graphviz)

docs-deps: ## Debian packages the site needs: graphviz, chromium, chromium-driver
	$(call docs_apt,graphviz chromium chromium-driver,dot:graphviz chromium:chromium chromedriver:chromium-driver)

test-deps: docs-deps

docs/graphs/%.svg: docs/graphs/%.dot docs/graphs/render.py | docs-graphviz
	$(PYTHON) docs/graphs/render.py $<

graphs: docs-graphviz $(DOCS_SVGS) ## render docs/graphs/*.dot to .svg with Graphviz

docs: graphs ## render the graphs, regenerate docs/index.html's generated parts, show where to open it
	$(PYTHON) docs/build_docs.py
	@echo "open file://$(CURDIR)/docs/index.html"
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] && command -v xdg-open >/dev/null 2>&1; then \
	  xdg-open "$(CURDIR)/docs/index.html" >/dev/null 2>&1 & \
	elif [ "$$(uname)" = Darwin ]; then open "$(CURDIR)/docs/index.html"; fi

timeline: install docs-graphviz ## measure a cold and two warm invocations, redraw the cold/warm timeline
	$(PY) docs/graphs/measure_timeline.py
	$(PYTHON) docs/graphs/render.py docs/graphs/cold_warm_timeline.dot
	$(PYTHON) docs/build_docs.py
