# Cachet — the two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
SWIFT ?= swift
RELEASE_BIN := .build/release/cachet
# Release binaries carry the Swift runtime inside (no /opt/swift at run time, ~3 MB less RSS at start).
RELEASE := -c release --static-swift-stdlib
PY := /usr/bin/python3
RUN_USER := $(shell id -un)
DEV := .dev

.PHONY: all build release release-all run test unit integration bench tls-storm testssl stress soak clean bootstrap \
	devcert fuzz-diff install install-files uninstall deb

all: build

bootstrap:
	@./Scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet

release-all: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet
	$(SWIFT) build $(RELEASE) --product cachet-bench

# ---- installing (`make install`, or `make release-all && sudo make install-files` when root has no swift)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/cachet
# The units and the man page name /etc/cachet.conf; a /usr/local install still reads its config from /etc.
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS := cachet.service cachet@.service

install: release-all
	@$(MAKE) --no-print-directory install-files

# Copies what is built; never overwrites an existing $(SYSCONFDIR)/cachet.conf (the operator's).
install-files:
	@for b in cachet cachet-bench; do test -x .build/release/$$b || \
	  { echo "make install-files: .build/release/$$b is missing (make release-all first)" >&2; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/cachet
	install -m 755 .build/release/cachet .build/release/cachet-bench $(DESTDIR)$(BINDIR)/
	install -m 644 man/cachet.1 man/cachet-bench.1 $(DESTDIR)$(MANDIR)/man1/
	for u in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/systemd/$$u.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
	  chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && mv $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done
	install -m 644 dist/cachet.conf $(DESTDIR)$(DOCDIR)/cachet.conf.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/cachet.conf ]; then echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/cachet.conf"; \
	  else install -m 644 dist/cachet.conf $(DESTDIR)$(SYSCONFDIR)/cachet.conf; fi

# Removes what install-files put there; the config only when it is still the unmodified example.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cachet $(DESTDIR)$(BINDIR)/cachet-bench \
	  $(DESTDIR)$(MANDIR)/man1/cachet.1 $(DESTDIR)$(MANDIR)/man1/cachet-bench.1 \
	  $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS)) $(DESTDIR)$(DOCDIR)/cachet.conf.example
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/cachet 2>/dev/null
	@if cmp -s dist/cachet.conf $(DESTDIR)$(SYSCONFDIR)/cachet.conf; then rm -f $(DESTDIR)$(SYSCONFDIR)/cachet.conf; \
	  elif [ -e $(DESTDIR)$(SYSCONFDIR)/cachet.conf ]; then echo "kept $(DESTDIR)$(SYSCONFDIR)/cachet.conf (modified)"; fi

# A binary .deb in the repository root (Scripts/deb: staged install-files, maintainer scripts from dist/debian).
deb: release-all
	./Scripts/deb

# The dev certificate is made, or renewed when it expires within 3 days (it is valid for 30).
devcert:
	@CACHET_DEV_DIR=$(DEV) ./Scripts/run-dev --cert-only

# Foreground, -v; prints a "ready" line once both listeners accept (Scripts/run-dev).
run: release
	@CACHET_BIN=$(RELEASE_BIN) CACHET_DEV_DIR=$(DEV) CACHET_RUN_USER=$(RUN_USER) ./Scripts/run-dev

unit: bootstrap
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

integration: release-all
	./Scripts/fetch-promtool
	CACHET_BIN=$(RELEASE_BIN) $(PY) -m unittest discover -s Tests/integration -p 'test_*.py' -v

test: bootstrap
	$(SWIFT) build $(RELEASE) --product cachet
	$(SWIFT) build $(RELEASE) --product cachet-bench
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(PY) Scripts/check-test-discovery
	./Scripts/fetch-promtool
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

# testssl.sh's full default scan of `cachet -Z` (make test runs the checks that rate findings).
testssl: release
	cd Tests/integration && CACHET_TESTSSL_FULL=1 CACHET_BIN=$(CURDIR)/$(RELEASE_BIN) $(PY) -m unittest -v \
	  test_tls_secure_defaults.SecureDefaults.test_testssl_reports_nothing_but_the_test_certificate

# TLS handshake storm (established client's share, handshakes/s) and RSA vs ECDSA handshake cost, Cachet next to
# memcached; a few minutes, not part of make test.
tls-storm: release
	$(SWIFT) build $(RELEASE) --product cachet-bench
	./Scripts/tls-storm

stress: release
	CACHET_BIN=$(RELEASE_BIN) CACHET_STRESS=1 $(PY) Tests/stress/stress.py
	cd Tests/integration && CACHET_BIN=$(CURDIR)/$(RELEASE_BIN) CACHET_WATCH_SECONDS=300 $(PY) -m unittest -v test_robustness_concurrency

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
