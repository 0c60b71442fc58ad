# Thin entry points; the logic lives in tools/setup.sh and the tinylr package.
TARGET ?= nrf52840
MODEL ?= lr_mpgnn
VENV ?= .venv
PY := $(VENV)/bin/python
# e.g. make deploy RESERVE=radio_stack=156K,23K
RESERVE ?=
PYTEST_ARGS ?=

.PHONY: setup deploy test test-fast bench clean

setup:
	@./tools/setup.sh

deploy: setup
	$(PY) -m tinylr deploy --target $(TARGET) --model $(MODEL) $(if $(RESERVE),--reserve $(RESERVE))

test: setup
	$(PY) -m ruff check tinylr tests
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

# Everything but the converter/cross-compiler/emulator tests, for quick edits.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Dense vs factored digits model through every stage; writes docs/benchmarks.md.
bench: setup
	$(PY) -m tinylr.bench

clean:
	rm -rf build
