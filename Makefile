# tandem — see README.md. `make demo` and `make test` do everything on a fresh machine.
TARGET   ?= x86_64-unknown-linux-gnu
PREFIX   ?= /usr
DESTDIR  ?=
CARGO    ?= cargo
BIN      := $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release/tandem
STATIC   := RUSTFLAGS="-C target-feature=+crt-static"

.PHONY: all build static test unit lint demo bench chaos vm-test install install-check fuzz-build clean check-static deb

all: build

# The release binary: stripped, glibc static-pie.
build static: $(BIN)
$(BIN): FORCE
	$(STATIC) $(CARGO) build --release --locked --target $(TARGET)
	@command -v file >/dev/null || scripts/prereqs build
	@file $(BIN) | grep -q static || { echo "error: $(BIN) is not static"; exit 1; }
	@ls -l $(BIN)
FORCE:

check-static: $(BIN)
	file $(BIN)

# Every test: unit, fixtures, simulations, and real-kernel integration tests (netns, pty, loop).
test:
	scripts/prereqs test
	$(MAKE) lint
	$(MAKE) build
	TANDEM_STATIC_BIN=$(abspath $(BIN)) $(CARGO) test --locked -- --test-threads=2
	$(MAKE) fuzz-build
	$(MAKE) install-check

# `make install` into a scratch root, and check what landed.
install-check:
	@d=$$(mktemp -d) && $(MAKE) --no-print-directory install DESTDIR=$$d >/dev/null && \
	  for f in usr/sbin/tandem etc/init.d/tandem usr/share/man/man8/tandem.8 usr/share/man/man5/tandem.conf.5 \
	           usr/lib/systemd/system/tandem.service; do \
	    [ -e $$d/$$f ] || { echo "install-check: $$f missing"; rm -rf $$d; exit 1; }; done && \
	  $$d/usr/sbin/tandem version && rm -rf $$d && \
	d=$$(mktemp -d) && $(MAKE) --no-print-directory install DESTDIR=$$d HB_LINKS=1 >/dev/null && \
	  { $$d/usr/sbin/hb_standby --help >/dev/null 2>&1; [ $$? = 1 ]; } && \
	  [ -L $$d/usr/sbin/cl_status ] && $$d/usr/sbin/cl_status -h | grep -q '^Usage: cl_status' && \
	  rm -rf $$d && echo "install-check: ok"

# House style, enforced: rustfmt (rustfmt.toml) and clippy with the [lints] of Cargo.toml.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	cd fuzz && $(CARGO) fmt --check

unit:
	$(CARGO) test --locked --lib

demo:
	scripts/prereqs demo
	$(MAKE) build
	$(CARGO) build --release --example probe
	TANDEM=$(abspath $(BIN)) demo/demo.sh

# Every phase (docs/benchmarks.md), or some: make bench PHASE=guests (soak, failover, scale,
# guests, pacemaker, ping, fencing, svccrash, hbmixed, watchdog; a comma-separated list works too; PHASES= too).
bench:
	scripts/prereqs bench
	$(MAKE) build
	TANDEM=$(abspath $(BIN)) $(if $(or $(PHASES),$(PHASE)),BENCH_PHASES=$(or $(PHASES),$(PHASE)) BENCH_COMMAND="make bench PHASE=$(or $(PHASES),$(PHASE))") bench/run.sh

# The chaos run (docs/chaos.md): seeded random faults against two daemons for CHAOS_MINUTES
# (default 10; `make test` runs 2). TANDEM_CHAOS_SEED=N replays a seed.
CHAOS_MINUTES ?= 10
chaos:
	scripts/prereqs test
	$(MAKE) build
	TANDEM_STATIC_BIN=$(abspath $(BIN)) TANDEM_CHAOS_MINUTES=$(CHAOS_MINUTES) \
	  $(if $(TANDEM_CHAOS_SEED),TANDEM_CHAOS_SEED=$(TANDEM_CHAOS_SEED)) \
	  $(CARGO) test --locked --test chaos -- --nocapture --exact chaos

vm-test:
	scripts/prereqs vm
	$(MAKE) build
	TANDEM=$(abspath $(BIN)) tests/vm/run.sh

# The Debian package, with dpkg-deb (packaging/deb, scripts/mkdeb): target/deb/tandem_VERSION_amd64.deb
deb: $(BIN)
	@command -v dpkg-deb >/dev/null || scripts/prereqs deb
	scripts/mkdeb $(BIN) $(or $(CARGO_TARGET_DIR),target)/deb

fuzz-build:
	cd fuzz && $(CARGO) build --locked

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/tandem
	install -D -m 0755 init/tandem $(DESTDIR)/etc/init.d/tandem
	install -D -m 0644 init/tandem.service $(DESTDIR)$(PREFIX)/lib/systemd/system/tandem.service
	install -D -m 0644 docs/tandem.8 $(DESTDIR)$(PREFIX)/share/man/man8/tandem.8
	install -D -m 0644 docs/tandem.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tandem.conf.5
	install -d -m 0700 $(DESTDIR)/etc/tandem $(DESTDIR)/var/lib/tandem
	@# HB_LINKS=1: heartbeat's command names as links to tandem (hb_standby, hb_takeover,
	@# cl_status; in sbin, ahead of heartbeat's /usr/bin/cl_status in root's PATH).
	$(if $(filter 1 yes,$(HB_LINKS)),for n in hb_standby hb_takeover cl_status; do \
	  ln -sf tandem $(DESTDIR)$(PREFIX)/sbin/$$n; done)

clean:
	$(CARGO) clean
