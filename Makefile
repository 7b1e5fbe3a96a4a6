# mote - the face of the build. CMake does the work; these targets are what
# people type. See README.md.
#
#   make          build build/mote
#   make run      install what is missing, build, start the hub with its dashboard
#                 (http://127.0.0.1:8080) and a simulated fleet (mote sim)
#   make test     install, build, run every test: unit + integration (real
#                 clients), the same under ASan+UBSan and under ThreadSanitizer
#                 (both with 4 event loops), and each fuzz target
#   make bench    benchmarks against the peer brokers (bench/RESULTS.md)
#   make fuzz     run the fuzz targets for longer (FUZZ_SECONDS, default 300)

JOBS        ?= $(shell nproc)
BUILD       ?= build
SAN_BUILD   ?= build-san
TSAN_BUILD  ?= build-tsan
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 300
TEST_FUZZ_SECONDS ?= 5
# Test passes run one more test than there are CPUs: most integration tests
# wait on sockets and timers, so the CPUs have room (make test < 20 min).
TEST_JOBS   ?= $(shell echo $$(( $$(nproc) + 1 )))
DATA        ?= data

.PHONY: all build deps run test test-unit test-san test-tsan test-fuzz bench fuzz clean format

all: build

deps:
	@scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

run: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target mote -- --no-print-directory
	@BUILD=$(BUILD) DATA=$(DATA) exec scripts/run.sh

test: deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(TEST_JOBS)
	$(MAKE) --no-print-directory test-san test-tsan test-fuzz

test-san:
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMOTE_SANITIZE=ON >/dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS) -- --no-print-directory
	MOTE_TEST_THREADS=4 ctest --test-dir $(SAN_BUILD) --output-on-failure -j $(TEST_JOBS)

# The broker runs one event loop per thread: ThreadSanitizer checks what
# crosses between them (exit status 66 on a report fails the test).
test-tsan:
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-fsanitize=thread" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) -- --no-print-directory
	TSAN_OPTIONS="halt_on_error=0 exitcode=66" MOTE_TEST_THREADS=4 \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(TEST_JOBS)

test-fuzz:
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMOTE_FUZZ=ON -DMOTE_FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) -- --no-print-directory
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS)

fuzz: deps
	$(MAKE) --no-print-directory test-fuzz TEST_FUZZ_SECONDS=$(FUZZ_SECONDS)

bench: deps build
	bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
