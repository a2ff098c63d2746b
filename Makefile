# Cachet — the two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_BIN := .build/release/cachet
# Release binaries carry the Swift runtime inside (no /opt/swift at run time, ~3 MB less RSS at start).
RELEASE := -c release --static-swift-stdlib
PY := /usr/bin/python3
RUN_USER := $(shell id -un)
DEV := .dev

.PHONY: all build release run test unit integration bench stress soak clean bootstrap devcert fuzz-diff

all: build

bootstrap:
	@./Scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet

# The dev certificate is made, or renewed when it expires within 3 days (it is valid for 30).
devcert:
	@CACHET_DEV_DIR=$(DEV) ./Scripts/run-dev --cert-only

# Foreground, -v; prints a "ready" line once both listeners accept (Scripts/run-dev).
run: release
	@CACHET_BIN=$(RELEASE_BIN) CACHET_DEV_DIR=$(DEV) CACHET_RUN_USER=$(RUN_USER) ./Scripts/run-dev

unit: bootstrap
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

integration: release
	CACHET_BIN=$(RELEASE_BIN) $(PY) -m unittest discover -s Tests/integration -p 'test_*.py' -v

test: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet
	$(SWIFT) build $(RELEASE) --product cachet-bench
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	CACHET_BIN=$(RELEASE_BIN) $(PY) -m unittest discover -s Tests/integration -p 'test_*.py' -v
	CACHET_BIN=$(RELEASE_BIN) ./Scripts/bench-smoke
	# AddressSanitizer and ThreadSanitizer servers under the concurrency scenarios (the unit tests under
	# them: `make asan` / `make tsan`), and every libFuzzer target: committed seeds and past crashes
	# replayed, then 10 s of fuzzing each.
	SANITIZE_SKIP_UNIT=1 ./Scripts/sanitize address
	SANITIZE_SKIP_UNIT=1 ./Scripts/sanitize thread
	FUZZ_SECONDS=10 ./Scripts/fuzz

# valgrind (callgrind rows) is needed by the bench only, so `make test`'s bootstrap stays lean.
bench: release
	@./Scripts/bootstrap bench
	./Scripts/bench

stress: release
	CACHET_BIN=$(RELEASE_BIN) CACHET_STRESS=1 $(PY) Tests/stress/stress.py
	cd Tests/integration && CACHET_BIN=$(CURDIR)/$(RELEASE_BIN) CACHET_WATCH_SECONDS=300 $(PY) -m unittest -v test_concurrency

# Bounded soak (default 30 min; SOAK_SECONDS=60 for a smoke): everything at once against one server.
soak: release
	$(SWIFT) build $(RELEASE) --product cachet-bench
	CACHET_BIN=$(RELEASE_BIN) $(PY) Tests/stress/soak.py

# Differential fuzzer against memcached 1.6.18: `make fuzz-diff SEED=7 CASES=3000` (exit 1 on any difference).
SEED ?= 1
CASES ?= 2000
fuzz-diff: release
	CACHET_BIN=$(RELEASE_BIN) $(PY) Tests/fuzzdiff/fuzzdiff.py --seed $(SEED) --cases $(CASES)

clean:
	rm -rf .build $(DEV)

# Sanitizer and fuzzing runs (`make test` runs the ASan and TSan scenarios and 10 s per fuzz target; see Scripts/sanitize
# and Scripts/fuzz).
.PHONY: asan tsan fuzz fuzz-seeds
FUZZ_SECONDS ?= 60

asan: bootstrap
	./Scripts/sanitize address

tsan: bootstrap
	./Scripts/sanitize thread

fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./Scripts/fuzz

fuzz-seeds:
	$(PY) Scripts/fuzz-seeds
