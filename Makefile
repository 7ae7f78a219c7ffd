# The two commands of the README:  `make demo` (the main job, offline)  and  `make test`.
# Both install everything first (scripts/install.sh, into .venv) when needed.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dualtalk-installed

.PHONY: install demo test bench lint docs
$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

# test-only JavaScript tools (tools/gltf: the Khronos glTF Validator, three.js's GLTFLoader), pinned by the lock
# file; without npm the tests that need them skip and say so
GLTF_TOOLS := tools/gltf/node_modules/.installed
$(GLTF_TOOLS): tools/gltf/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tools/gltf --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "make: npm not found: the glTF checks of tests/export will skip"; fi

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dualtalk demo

test: $(STAMP) $(GLTF_TOOLS)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/generate.py

# the documentation site (docs/ + API pages from the docstrings) into site/; warnings are errors
docs: $(STAMP)
	$(BIN)/python scripts/docs_tables.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# the habits CI keeps: ruff (lint + format) and mypy on the code, clean
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
