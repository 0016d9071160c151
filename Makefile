# tandem — see README.md. `make demo` and `make test` do everything on a fresh machine.
TARGET   ?= x86_64-unknown-linux-gnu
PREFIX   ?= /usr
DESTDIR  ?=
CARGO    ?= cargo
BIN      := target/$(TARGET)/release/tandem
STATIC   := RUSTFLAGS="-C target-feature=+crt-static"

.PHONY: all build static test unit demo bench vm-test install fuzz-build clean check-static

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
	$(MAKE) build
	TANDEM_STATIC_BIN=$(CURDIR)/$(BIN) $(CARGO) test --locked -- --test-threads=2

unit:
	$(CARGO) test --locked --lib

demo:
	scripts/prereqs demo
	$(MAKE) build
	$(CARGO) build --release --example probe
	TANDEM=$(CURDIR)/$(BIN) demo/demo.sh

bench:
	scripts/prereqs bench
	$(MAKE) build
	TANDEM=$(CURDIR)/$(BIN) bench/run.sh

vm-test:
	scripts/prereqs vm
	$(MAKE) build
	TANDEM=$(CURDIR)/$(BIN) tests/vm/run.sh

fuzz-build:
	cd fuzz && $(CARGO) build

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/tandem
	install -D -m 0755 init/tandem $(DESTDIR)/etc/init.d/tandem
	install -D -m 0644 init/tandem.service $(DESTDIR)$(PREFIX)/lib/systemd/system/tandem.service
	install -D -m 0644 docs/tandem.8 $(DESTDIR)$(PREFIX)/share/man/man8/tandem.8
	install -D -m 0644 docs/tandem.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tandem.conf.5
	install -d -m 0700 $(DESTDIR)/etc/tandem $(DESTDIR)/var/lib/tandem

clean:
	$(CARGO) clean
