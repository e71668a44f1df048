# Slipway: `make serve` runs the server on examples/models; `make test` runs every test.
# Both set up what is missing first (Debian packages, ONNX Runtime from NuGet).

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
TORCH_BUILD ?= build-torch
PYTHON ?= /usr/bin/python3
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
FUZZ_SECONDS ?= 20
CMAKE_FLAGS ?=
ifdef ONNXRUNTIME_ROOT
CMAKE_FLAGS += -DONNXRUNTIME_ROOT=$(ONNXRUNTIME_ROOT)
endif

.PHONY: setup build serve test unit integration asan tsan fuzz torch deploy-check models bench bench-batching bench-observability bench-cache bench-optimize clean

setup:
	./scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

serve: build
	$(BUILD)/slipway serve --model-repository examples/models --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT)

models:
	$(PYTHON) scripts/make_models.py tests/models --tests

unit: build models
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

integration: build models
	SLIPWAY_BINARY=$(abspath $(BUILD))/slipway $(PYTHON) -m pytest -q tests/integration

asan: setup models
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLIPWAY_SANITIZE=address,undefined \
	  -DSLIPWAY_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	  ctest --output-on-failure -j$(JOBS)
	SLIPWAY_BINARY=$(abspath $(ASAN_BUILD))/slipway SLIPWAY_SANITIZED=1 \
	  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	  $(PYTHON) -m pytest -q tests/integration

# ThreadSanitizer over the unit tests (scheduler, lifecycle and serving under concurrent load).
tsan: setup models
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLIPWAY_SANITIZE=thread \
	  -DSLIPWAY_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j$(JOBS) --target slipway_unit_tests
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j$(JOBS)

fuzz: setup
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSLIPWAY_FUZZ=ON -DSLIPWAY_TESTS=OFF -DSLIPWAY_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_json_request fuzz_grpc_request
	./tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Deployment files: the image's runtime packages against the built binary; every overlay and
# KServe example rendered (kubectl kustomize) and validated against the API schemas.
deploy-check: build
	SLIPWAY_BINARY=$(abspath $(BUILD))/slipway $(PYTHON) -m pytest -q tests/deploy

# The LibTorch backend is opt-in (Debian's libtorch brings ~220 packages into the process): a build
# of its own, its unit tests, and the backend integration tests against Python's torch.
torch: setup models
	cmake -S . -B $(TORCH_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLIPWAY_LIBTORCH=ON \
	  -DSLIPWAY_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(TORCH_BUILD) -j$(JOBS) --target slipway slipway_backend_tests
	$(TORCH_BUILD)/tests/unit/slipway_backend_tests
	SLIPWAY_BINARY=$(abspath $(TORCH_BUILD))/slipway $(PYTHON) -m pytest -q tests/integration/test_backends.py

test: unit integration asan tsan fuzz torch deploy-check
	@echo "make test: all suites passed"

bench: build
	$(PYTHON) bench/run_foundation.py --binary $(BUILD)/slipway --floor $(BUILD)/bench/ort_floor

bench-observability: build
	$(PYTHON) bench/run_observability.py --binary $(BUILD)/slipway --loadgen $(BUILD)/bench/slipway_loadgen

bench-cache: build
	$(PYTHON) bench/run_cache.py --binary $(BUILD)/slipway

# slipway optimize on the example models and two wider ones: sizes, agreement, in-process speed.
bench-optimize: build
	$(PYTHON) bench/run_optimize.py --binary $(BUILD)/slipway

bench-batching: build
	./scripts/setup.sh --bench
	$(PYTHON) bench/run_batching.py --binary $(BUILD)/slipway --floor $(BUILD)/bench/ort_floor

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(TORCH_BUILD)
