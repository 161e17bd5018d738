# The two commands a new user needs:  make demo  (install + run the whole pipeline)
#                                     make test  (install + run the test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= runs/demo

.PHONY: setup demo demo-quick test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt setup.py runtime/_scan.c  # the kernel is compiled at install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0 -c constraints.txt
	$(BIN)/pip install -q -e '.[tools,tflite,fast,ann,text,crypto,dev]' -c constraints.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/edgerec demo --out $(OUT)

demo-quick: setup
	$(BIN)/edgerec demo --quick --out $(OUT)-quick

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs build *.egg-info
