# The two commands a new user needs: `make run` and `make test`.
# Both install missing Debian packages, configure and build; the build lives in build/<preset>.
PRESET ?= release
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc)

.PHONY: all deps configure build run test bench asan clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@$(BUILD)/scenarios/hmmsim demo

test: build
	@ctest --test-dir $(BUILD) -j $(JOBS) --output-on-failure --no-tests=error

bench: build
	@scripts/run-benchmarks $(BUILD)

asan:
	@$(MAKE) test PRESET=asan

clean:
	@rm -rf build
