# Two commands do everything (see README.md):
#   make demo   set up .venv, scaffold the default project, install it, train it (prints test accuracy)
#   make test   set up .venv and run the template's test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR := build/demo
# The generated project's dependency ranges, read from cookiecutter.json (one source of truth).
PROJECT_REQUIREMENTS = $(shell $(PYTHON) -c "import json; r = json.load(open('cookiecutter.json'))['_requirements']; print(' '.join(repr(k + v) for k, v in r.items()))")
TOOLS = check-jsonschema cookiecutter cruft hatchling editables pyyaml pre-commit-hooks uv

.PHONY: demo test test-fast lint venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: cookiecutter.json Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PROJECT_REQUIREMENTS) $(TOOLS)
	touch $@

demo: venv
	rm -rf $(DEMO_DIR)
	@# The hook's "Next steps" are for a project of one's own; the demo's are printed at the end.
	$(BIN)/cookiecutter . --no-input --output-dir $(DEMO_DIR) > /dev/null
	$(BIN)/python -m pip install -q -e "$(DEMO_DIR)/image-classifier[dev]"
	cd $(DEMO_DIR)/image-classifier && ../../../$(BIN)/python train.py
	@echo
	@echo "The demo project is $(DEMO_DIR)/image-classifier, installed in $(VENV). To go on with it:"
	@echo "  . $(BIN)/activate && cd $(DEMO_DIR)/image-classifier"
	@echo "  python train.py optimizer=sgd     # any run of its README"
	@echo "  pytest                            # its own tests"

test: venv lint
	$(BIN)/python -m pytest tests

# Hooks and bakes only, without running the generated project's own suite.
test-fast: venv
	$(BIN)/python -m pytest tests --ignore tests/test_generated_project.py

lint: venv
	$(BIN)/ruff check hooks tests benchmarks
	$(BIN)/ruff format --check hooks tests benchmarks

clean:
	rm -rf $(VENV) build
