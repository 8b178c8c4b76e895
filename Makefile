# The two commands a user needs: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit engines-start engines-stop bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/dsr demo

# Fetches Elasticsearch and OpenSearch from Maven Central on first use (cached under ~/.cache/dsr),
# starts one single-node server of each for the whole session and stops them at the end.
test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -p no:cacheprovider tests

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
	rm -rf $(VENV) build *.egg-info
