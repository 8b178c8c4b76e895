# The two commands a user needs: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit chromium engines-start engines-stop bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/dsr demo

# The JavaScript search clients the end-to-end tests run (tests/js: Searchkit), as locked; without npm
# their tests are skipped.
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/js --no-audit --no-fund && touch $@; \
	else echo "npm not found: the tests of JavaScript search clients are skipped"; fi

# Fetches Elasticsearch and OpenSearch from Maven Central on first use (cached under ~/.cache/dsr),
# starts one single-node server of each for the whole session and stops them at the end.
test: lint $(JS_STAMP) chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -p no:cacheprovider tests

# Debian's chromium, for the relevance workbench's browser test (Playwright drives it; Playwright's own
# browser download is never used). Installed once; a no-op when it is there.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

unit: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -p no:cacheprovider -m "unit" tests

# ruff; the layer contract (imports only go down, no package cycles); the type checker over src/dsr
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

engines-start: $(STAMP)
	$(BIN)/dsr engines start all

engines-stop: $(STAMP)
	$(BIN)/dsr engines stop all

clean:
	rm -rf $(VENV) build *.egg-info tests/js/node_modules
