# The two commands of the README:  `make demo` (the main job, offline)  and  `make test`.
# Both install everything first (scripts/install.sh, into .venv) when needed.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dualtalk-installed

.PHONY: install demo test bench lint docs
$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dualtalk demo

test: $(STAMP)
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
