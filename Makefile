# The two commands of the README: `make demo` and `make test`. Both set up
# everything themselves: a virtual environment in .venv with nnsim installed,
# and Debian's dataset-fashion-mnist (and, for the tests, graphviz) when they
# are missing and apt is usable.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_ARGS := --classImageLimit=2000 --batchSize=128 --epochs=10 --hiddenLayerSize=128 \
             --initialWeightScaling=0.01 --learningRate=0.001

.PHONY: demo test lint format bench install dataset clean

demo: install dataset
	$(BIN)/nnsim run examples/fashion_mnist/nn.py -- $(DEMO_ARGS)

test: install
	@scripts/ensure-dataset.sh --optional
	@scripts/ensure-graphviz.sh
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml setup.py src/nnsim/sim/_cqueue.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench,mpi,onnx,keras,dataflow]'
	touch $(STAMP)

dataset:
	@scripts/ensure-dataset.sh

format: install
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

bench: install dataset
	$(BIN)/python benchmarks/phold.py
	$(BIN)/python benchmarks/train_mlp.py
	$(BIN)/python benchmarks/checkpoint_io.py
	$(BIN)/python benchmarks/checkpoint_stall.py
	$(BIN)/python benchmarks/dataflow.py
	$(BIN)/python benchmarks/parallel.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
