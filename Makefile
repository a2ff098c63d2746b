# Cachet — the two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_BIN := .build/release/cachet
# Release binaries carry the Swift runtime inside (no /opt/swift at run time, ~3 MB less RSS at start).
RELEASE := -c release --static-swift-stdlib
PY := /usr/bin/python3
RUN_USER := $(shell id -un)
DEV := .dev

.PHONY: all build release run test unit integration bench tls-storm testssl stress soak clean bootstrap devcert fuzz-diff

all: build

bootstrap:
	@./Scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet

devcert:
	@mkdir -p $(DEV)
	@if [ ! -f $(DEV)/server.pem ]; then \
	  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    -keyout $(DEV)/server.key -out $(DEV)/server.pem 2>/dev/null && \
	  echo "made a self-signed dev certificate in $(DEV)/"; fi

run: release devcert
	@echo "cachet: TLS on 127.0.0.1:11211, plaintext (notls:) on 127.0.0.1:11212"
	@echo "  connect:   openssl s_client -connect 127.0.0.1:11211 -quiet   (then type: stats settings)"
	@echo "  plaintext: printf 'set a 0 0 1\\r\\nx\\r\\nget a\\r\\n' | nc -q1 127.0.0.1 11212"
	$(RELEASE_BIN) -u $(RUN_USER) -Z -o ssl_chain_cert=$(DEV)/server.pem,ssl_key=$(DEV)/server.key \
	  -l 127.0.0.1:11211,notls:127.0.0.1:11212 -v

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

bench: release
	./Scripts/bench

# testssl.sh's full default scan of `cachet -Z` (make test runs the checks that rate findings).
testssl: release
	cd Tests/integration && CACHET_TESTSSL_FULL=1 CACHET_BIN=$(CURDIR)/$(RELEASE_BIN) $(PY) -m unittest -v \
	  test_tls_hardening.SecureDefaults.test_testssl_reports_nothing_but_the_test_certificate

# TLS handshake storm (established client's share, handshakes/s) and RSA vs ECDSA handshake cost, Cachet next to
# memcached; a few minutes, not part of make test.
tls-storm: release
	$(SWIFT) build $(RELEASE) --product cachet-bench
	./Scripts/tls-storm

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
