# The two commands a new user needs: `make run` and `make test`.
# Both install missing Debian packages, configure and build; the build lives in build/<preset>.
PRESET ?= release
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc)

# make fuzz FUZZ_TIME=600   (seconds per target; FUZZ_RUNS=N runs a fixed number of inputs instead;
# the targets run JOBS at a time)
FUZZ_TIME ?= 60
FUZZ_RUNS ?=

.PHONY: all deps configure build run test bench asan fuzz format check-format lint clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# make run: the camera chain (scenarios/camera_chain.yaml), three ways side by side.
run: build
	@$(BUILD)/scenarios/hmmsim run scenarios/camera_chain.yaml

test: build
	@ctest --test-dir $(BUILD) -j $(JOBS) --output-on-failure --no-tests=error

bench: build
	@scripts/run-benchmarks $(BUILD)

asan:
	@$(MAKE) test PRESET=asan

fuzz:
	@scripts/install-deps --fuzz
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target fuzz_all
	@scripts/run-fuzzers build/fuzz $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS),--time $(FUZZ_TIME)) --jobs $(JOBS)

# make format: clang-format every tracked C++ source in place; make check-format: fail on any that is not.
format:
	@scripts/format

check-format:
	@scripts/check-format

# make lint: clang-tidy (.clang-tidy; the checks held are listed in scripts/lint) over every library
# source, with the release build's compile_commands.json; fails on any finding.
lint: configure
	@scripts/lint $(BUILD)

clean:
	@rm -rf build
