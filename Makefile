# The two commands a new user needs:  make demo  (install + run the whole pipeline)
#                                     make test  (install + run the test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A second venv with the device side only (the base install, no torch/onnx/transformers), where
# the runtime's own suite (tests/device) runs against the spec's golden bundle.
DEVICE_VENV ?= .venv-device
DEVICE_BIN  := $(DEVICE_VENV)/bin
# A third venv for Flower (the optional extra `federated`): its pins (protobuf, rich, packaging) clash
# with the host tools' constraints, so it holds the base install, Flower with Ray, and dp-accounting.
FLOWER_VENV ?= .venv-flower
FLOWER_BIN  := $(FLOWER_VENV)/bin
OUT    ?= runs/demo

.PHONY: setup setup-device setup-flower demo demo-quick test test-device test-flower arm-tools lint mutate clean

$(VENV)/.installed: pyproject.toml constraints.txt setup.py runtime/_scan.c runtime/_ids.c runtime/scan_kernels.h  # compiled at install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0 -c constraints.txt
	$(BIN)/pip install -q -e '.[tools,tflite,fast,ann,text,crypto,dev]' -c constraints.txt
	touch $@

setup: $(VENV)/.installed

$(DEVICE_VENV)/.installed: pyproject.toml constraints.txt setup.py runtime/_scan.c runtime/_ids.c runtime/scan_kernels.h
	$(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_BIN)/pip install -q --upgrade pip
	# the base install and the TFLite engine, plus the test runner: nothing of the host side
	$(DEVICE_BIN)/pip install -q -e '.[tflite]' pytest hypothesis -c constraints.txt
	touch $@

setup-device: $(DEVICE_VENV)/.installed

$(FLOWER_VENV)/.installed: pyproject.toml setup.py runtime/_scan.c runtime/_ids.c runtime/scan_kernels.h
	$(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_BIN)/pip install -q --upgrade pip
	$(FLOWER_BIN)/pip install -q -e '.[federated]' pytest
	touch $@

setup-flower: $(FLOWER_VENV)/.installed

demo: setup
	$(BIN)/edgerec demo --out $(OUT)

demo-quick: setup
	$(BIN)/edgerec demo --quick --out $(OUT)-quick

# the device suite alone in the device venv (the host conftest stays out), the federated rounds under
# Flower's simulation engine in the Flower venv, then the full suite over up to 4 cores (pytest-xdist; a
# file's tests stay on one worker, so its module fixtures are built once)
test: setup arm-tools test-device test-flower
	$(if $(APT),EDGEREC_REQUIRE_ARM=1) $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# The ARM scan kernels are tested under user-mode emulation (tests/test_scan_native.py): a cross
# compiler and qemu, installed from Debian's packages only when missing (a few seconds when cached).
APT  := $(shell command -v apt-get 2>/dev/null)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
arm-tools:
ifneq ($(APT),)
	@command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null || \
		$(SUDO) apt-get install -y -q --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
		>/dev/null || ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q \
		--no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null)
else
	@echo "no apt-get here: install an aarch64 cross compiler and qemu-aarch64 to test the ARM kernels"
endif

test-device: setup-device
	EDGEREC_DEVICE_ONLY=1 $(DEVICE_BIN)/python -m pytest -q tests/device --confcutdir=tests/device \
		-p no:cacheprovider

test-flower: setup-flower
	$(FLOWER_BIN)/python -m pytest -q tests/flower --confcutdir=tests/flower -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .

# Mutation testing of the modules that decide behaviour (slow: not part of CI). A subset:
#   make mutate MODULES="runtime/policies.py data/split.py" [TESTS="tests/test_split.py"] [JOBS=1]
MODULES ?=
TESTS   ?=
JOBS    ?= 2
mutate: setup
	$(BIN)/python tools/mutate.py --jobs $(JOBS) $(MODULES) $(if $(TESTS),--tests $(TESTS))

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(FLOWER_VENV) runs build *.egg-info
