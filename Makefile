# Every target creates .venv and installs what it needs when missing: a fresh clone
# needs nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/python -m vigil.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff; mypy (strict on the engine, the match policy and the banks: pyproject.toml);
# import-linter (the layers of DESIGN.md, no import cycles: pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The engine's benchmarks (issue 2) and video (issue 5); the slower workflow benchmarks
# (imports, match_files, scan, load) are run one by one: see bench/RESULTS.md for commands.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.hashing
	$(BIN)/python -m bench.robustness
	$(BIN)/python -m bench.matching
	-$(BIN)/pip install --quiet -r bench/requirements-video.txt
	$(BIN)/python -m bench.video

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
