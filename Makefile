# Palisade — top-level entry points. See README.md.
#   make demo   install what is missing, build (release), run the shipped example
#   make test   install, build (release, ASan+UBSan, fuzzers) and run every test
SHELL := /bin/bash
JOBS  ?= $(shell nproc)
CMAKE_GEN := -G Ninja
REL   := build/release
SAN   := build/asan
FUZZ  := build/fuzz

.PHONY: all deps build asan fuzz-build test demo bench fuzz-long lint format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(REL)/build.ninja:
	cmake -S . -B $(REL) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release
$(SAN)/build.ninja:
	cmake -S . -B $(SAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPALISADE_SANITIZE=ON \
	  -DPALISADE_BENCH=OFF
$(FUZZ)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPALISADE_FUZZ=ON

build: deps $(REL)/build.ninja
	cmake --build $(REL) -j $(JOBS)

asan: deps $(SAN)/build.ninja
	cmake --build $(SAN) -j $(JOBS)

fuzz-build: deps $(FUZZ)/build.ninja
	cmake --build $(FUZZ) -j $(JOBS)

# Unit + integration (release), unit again under ASan+UBSan, a short run of every fuzzer.
test: build asan fuzz-build
	@bash scripts/run-tests.sh $(REL) $(SAN) $(FUZZ)

demo: build
	@bash examples/demo.sh $(REL)

bench: build
	@bash bench/run.sh $(REL)

# Longer fuzzing campaign (not part of make test): FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 600
fuzz-long: fuzz-build
	@bash tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

lint: $(REL)/build.ninja
	run-clang-tidy -quiet -p $(REL) 'src/.*\.cc$$'

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
