# The README's commands. `make run` and `make test` work from a fresh Debian 12 machine with only
# Rust (rustup) and Node.js: every target first installs what it is missing, and skips what is
# already there, so the second run is quick.
#
#   make run     build, then start the server on ports 1400/1401 with ./data
#   make demo    a vendor service, a server with demo licenses, jobs in a loop (Ctrl-C stops all);
#                CLUSTER=3: a failover network of three members instead (make demo-network)
#   make test    everything CI checks: format, lints, unit + integration tests, Playwright, Schemathesis
#   make build   the UI (trunk), the release server binary that embeds it, and license-vendor
#   make bundle-check  the web app's two wasm bundles (gzip) against their budgets (make test)
#   make vendor-build VENDOR_KEYS=vendor.pub[,old.pub]   a sealed server: trusts only these keys
#   make sealed-test  a sealed build with a fresh key, and the tests a customer's tricks must fail
#   make lint    format check, clippy (native and wasm32), TypeScript check
#   make api-fuzz  Schemathesis on the admin API of a release server
#   make bench   license cycles per second and latency, next to a baseline, at concurrency 1, 16, 64;
#                grants during a mass drop; the usage report over a year, and over a month of
#                20,000 new hosts a day; start-up after 1 M and 10 M ledger entries
#   make soak    kill -9 under load SOAK_KILLS times (default 1000), then the audit of the ledger
#   make network-soak  a three-member failover network's coordinator killed under load
#                NETWORK_KILLS times (default 20), the audit, and the time to the next success
#   make fuzz    each fuzz target (cargo-fuzz) for FUZZ_SECONDS (default 300)
#   make deb     the Debian package target/debian/license-server_VERSION_amd64.deb (binary with the
#                UI, systemd unit, /etc/license-server/license-server.toml, man pages, completions)
#   make deb-check  the package's contents, its configuration file and unit checked (make test)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Tools installed by cargo land here; wasm-opt comes from app/node_modules (binaryen@132), first
# on PATH so trunk never picks an older system wasm-opt.
export PATH := $(CURDIR)/app/node_modules/.bin:$(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)
export TRUNK_SKIP_VERSION_CHECK := true
# Playwright drives Debian's Chromium; its own browser download is not reachable.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

TRUNK_VERSION := 0.21.14
# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION = $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"$$/\1/p;q}' Cargo.lock)
CHROMIUM := /usr/bin/chromium
# promtool (Debian's prometheus package) lints the exposition of GET /metrics in the tests.
PROMTOOL := /usr/bin/promtool
# systemd-analyze checks the Debian package's unit; curl is a client of the TLS tests.
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze
CURL := /usr/bin/curl
CARGO_DEB_VERSION := 3.8.0
VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)
DEB = target/debian/license-server_$(VERSION)_amd64.deb
SERVER_BIN := target/release/license-server
VENDOR_BIN := target/release/license-vendor
# A sealed build has its own target directory, so it never replaces the development build that
# the tests and `make demo` run.
SEALED_TARGET := target/vendor-build
SEALED_BIN := $(SEALED_TARGET)/release/license-server
SEALED_TEST_KEYS := target/sealed-test-keys
comma := ,
empty :=
space := $(empty) $(empty)
# Two bundles: the status page (app/index.html) and the admin screens (app/admin.html, made from
# it), each in its own folder under app/dist/, served under /assets/status/ and /assets/admin/.
UI_INDEX := app/dist/admin/index.html

VENV := .venv
ST := $(VENV)/bin/st
SCHEMATHESIS_VERSION := 4.32.5

APP_NPM := app/node_modules/.package-lock.json
E2E_NPM := end2end/node_modules/.package-lock.json

# What the UI bundle is built from: trunk runs only when one of these changed, so an unchanged UI
# does not make cargo re-embed it and relink the server.
UI_SOURCES := $(shell find app/src app/models/src style public -type f 2>/dev/null) \
	app/index.html app/Trunk.toml app/Cargo.toml app/models/Cargo.toml Cargo.toml Cargo.lock

.PHONY: help setup build bundle-size bundle-check vendor-build run demo demo-network test sealed-test lint e2e api-fuzz bench soak network-soak fuzz deb deb-check clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

## --- tools --------------------------------------------------------------------------------

setup: $(APP_NPM)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
		|| rustup target add wasm32-unknown-unknown
	@trunk --version 2>/dev/null | grep -qx 'trunk $(TRUNK_VERSION)' \
		|| cargo install trunk --version $(TRUNK_VERSION) --locked
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }
	@# Without --locked: the CLI's own lockfile names a crate version the registry lacks.
	@wasm-bindgen --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' \
		|| cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

$(APP_NPM): app/package.json app/package-lock.json
	cd app && npm ci --no-audit --no-fund
	@touch $@

$(E2E_NPM): end2end/package.json end2end/package-lock.json
	cd end2end && npm ci --no-audit --no-fund
	@touch $@

# Debian's own python3 needs python3-venv for this; other Pythons have it built in.
$(ST):
	@python3 -m venv $(VENV) 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y python3-venv \
		&& python3 -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)

# Debian packages, as root or through sudo.
define apt_install
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends $(1)
endef

$(CHROMIUM):
	$(call apt_install,chromium)

$(PROMTOOL):
	$(call apt_install,prometheus)

$(SYSTEMD_ANALYZE):
	$(call apt_install,systemd)

$(CURL):
	$(call apt_install,curl)

## --- build and run ------------------------------------------------------------------------

$(UI_INDEX): $(UI_SOURCES) | setup
	rm -rf app/dist
	cd app && trunk build --release --locked --dist dist/status --public-url /assets/status/ index.html
	@# The admin page is the status page with the other binary (and no robots.txt), made here so
	@# that the two cannot drift apart.
	sed -e 's/data-bin="status"/data-bin="admin"/' -e '/rel="copy-dir"/d' -e '/^<!-- /d' \
		app/index.html > app/admin.html
	cd app && trunk build --release --locked --dist dist/admin --public-url /assets/admin/ admin.html

build: setup $(UI_INDEX)
	cargo build --release --locked -p server
	@ls -l $(SERVER_BIN) $(VENDOR_BIN) app/dist/*/*.wasm | awk '{print $$5, $$9}'
	@$(MAKE) --no-print-directory bundle-size

# The web app's wasm bundles: the status page's, which every browser that opens the status page
# downloads, and the admin screens'. Their sizes as served (gzip -9; brotli, which browsers prefer,
# is smaller), and a budget for each that they may not pass. The budgets sit just over today's
# sizes, so that growth is a decision (see the README).
STATUS_WASM_GZIP_BUDGET := 260000
ADMIN_WASM_GZIP_BUDGET := 420000
bundle-size:
	@for f in app/dist/*/*.wasm; do \
		echo "wasm bundle $$(basename $$(dirname $$f)): $$(stat -c %s $$f) bytes, $$(gzip -9 -c $$f | wc -c) gzip"; \
	done

bundle-check: build
	@status=0; \
	for bundle in status:$(STATUS_WASM_GZIP_BUDGET) admin:$(ADMIN_WASM_GZIP_BUDGET); do \
		name=$${bundle%%:*}; budget=$${bundle#*:}; \
		f=$$(ls app/dist/$$name/*.wasm); size=$$(gzip -9 -c $$f | wc -c); \
		if [ $$size -gt $$budget ]; then \
			echo "the $$name wasm bundle is $$size bytes gzip, over its budget of $$budget (Makefile: $${name^^}_WASM_GZIP_BUDGET)" >&2; \
			status=1; \
		fi; \
	done; \
	exit $$status

# The server a vendor ships: VENDOR_KEYS (comma-separated vendor.pub files) compiled in; it trusts
# those keys only and refuses --vendor-public-key.
vendor-build: setup $(UI_INDEX)
	@test -n "$(VENDOR_KEYS)" || { echo "usage: make vendor-build VENDOR_KEYS=vendor.pub[,old.pub]" >&2; exit 2; }
	LICENSE_SERVER_VENDOR_KEYS="$(subst $(space),$(comma),$(abspath $(subst $(comma),$(space),$(VENDOR_KEYS))))" \
		CARGO_TARGET_DIR=$(SEALED_TARGET) cargo build --release --locked -p server --bin license-server
	$(SEALED_BIN) --version

# Options of `serve` can be passed as ARGS="--port 2400" or LICENSE_SERVER_* variables.
run: build
	$(SERVER_BIN) serve --data-dir ./data $(ARGS)

# A vendor service, a server with the demo licenses activated, and jobs in a loop; Ctrl-C stops all.
# CLUSTER=3: the server is a failover network of three members on this machine.
CLUSTER ?= 1
demo: build
	CLUSTER=$(CLUSTER) LICENSE_SERVER_BIN=$(SERVER_BIN) LICENSE_VENDOR_BIN=$(VENDOR_BIN) examples/demo.sh

demo-network:
	$(MAKE) demo CLUSTER=3

## --- checks -------------------------------------------------------------------------------

lint: setup $(E2E_NPM)
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo clippy --locked -p app --target wasm32-unknown-unknown -- -D warnings
	cargo check --locked -p models --target wasm32-unknown-unknown
	cd end2end && npx tsc --noEmit

# Built first, so that the integration tests see the embedded UI as users get it.
test: lint build $(CHROMIUM) $(PROMTOOL) $(CURL) $(E2E_NPM) $(ST)
	$(MAKE) bundle-check
	cargo test --locked --workspace
	$(MAKE) soak SOAK_KILLS=30
	$(MAKE) network-soak NETWORK_KILLS=20
	$(MAKE) fuzz FUZZ_SECONDS=20
	$(MAKE) e2e
	$(MAKE) api-fuzz
	$(MAKE) deb-check
	$(MAKE) sealed-test

# A sealed build with a fresh vendor key, then the tests of what a customer would try against it.
sealed-test: build
	rm -rf $(SEALED_TEST_KEYS)
	$(VENDOR_BIN) keygen --out-dir $(SEALED_TEST_KEYS)
	$(MAKE) vendor-build VENDOR_KEYS=$(SEALED_TEST_KEYS)/vendor.pub
	LICENSE_SERVER_SEALED_BIN=$(abspath $(SEALED_BIN)) LICENSE_SERVER_SEALED_KEY=$(abspath $(SEALED_TEST_KEYS))/vendor.key \
		cargo test --locked -p server --test it sealed -- --ignored

# Playwright against the release binary; each test starts its own server on free ports.
e2e: $(CHROMIUM) $(E2E_NPM)
	test -x $(SERVER_BIN) || { echo "no $(SERVER_BIN): run 'make build'" >&2; exit 1; }
	cd end2end && npx playwright test

# Schemathesis fuzzes every admin and status operation of /server/openapi.json with an admin
# token: no 5xx, no answer that contradicts the schema.
api-fuzz: $(ST)
	test -x $(SERVER_BIN) || { echo "no $(SERVER_BIN): run 'make build'" >&2; exit 1; }
	ST=$(ST) end2end/schemathesis.sh

# A release server of its own on a temporary data directory with a large license; see the README.
bench: build
	$(SERVER_BIN) bench --spawn-server --concurrency 1,16,64 --duration 10 --listeners 100
	$(SERVER_BIN) bench --spawn-server --mass-drop 50000 --concurrency 16
	$(SERVER_BIN) bench --spawn-server --usage-days 365
	$(SERVER_BIN) bench --spawn-server --usage-days 30 --usage-hosts 20000
	$(SERVER_BIN) bench --spawn-server --startup-entries 1000000
	$(SERVER_BIN) bench --spawn-server --startup-entries 10000000
	$(SERVER_BIN) bench --spawn-network 3 --concurrency 16,64 --duration 10 --failover-kills 20

# The crash soak (about 2 s a crash): a data directory killed under load 50 times in a row, then
# audited (every acknowledged grant and debit in the ledger, never more seats held than licensed),
# then the next.
SOAK_KILLS ?= 1000
soak:
	SOAK_KILLS=$(SOAK_KILLS) cargo test --locked -p server --test it kill_9_soak -- --ignored --nocapture

# A three-member failover network on 127.0.0.1: its coordinator killed (kill -9) under load
# NETWORK_KILLS times, each time started again; then every acknowledged grant and debit is looked
# for in the ledger (the same on every member), and the wait for the next success is printed.
NETWORK_KILLS ?= 20
network-soak:
	NETWORK_KILLS=$(NETWORK_KILLS) cargo test --locked -p server --test it failover_soak -- --ignored --nocapture

# libFuzzer through cargo-fuzz, on stable Rust (RUSTC_BOOTSTRAP lets it pass the flags it needs).
# No sanitizer: the code has no unsafe; a panic or a broken assertion is the finding, written to
# fuzz/artifacts/TARGET/. The corpus grows in fuzz/corpus/ (not committed) from fuzz/seeds/.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := license_file activation_request vendor_catalog protocol_body ledger_row
fuzz:
	@cargo fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)' \
		|| cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked
	@cd fuzz && for target in $(FUZZ_TARGETS); do \
		echo "fuzz target $$target, $(FUZZ_SECONDS) s:"; \
		mkdir -p corpus/$$target; \
		RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --release $$target corpus/$$target seeds/$$target \
			-- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 2>&1 \
			| grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|thread)' ; \
		test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz target $$target failed: see fuzz/artifacts/$$target" >&2; exit 1; }; \
	done

# The package of the development build that `make build` makes; a vendor packages a sealed one
# the same way after `make vendor-build` (cargo deb --no-build takes target/release).
deb: build
	@cargo deb --version 2>/dev/null | grep -q ' $(CARGO_DEB_VERSION)$$' \
		|| cargo install cargo-deb --version $(CARGO_DEB_VERSION) --locked
	rm -rf target/manual
	$(SERVER_BIN) generate-manual --out-dir target/manual
	cargo deb -p server --no-build --locked --output $(DEB)
	@ls -l $(DEB) | awk '{print $$5, $$9}'

deb-check: deb $(SYSTEMD_ANALYZE)
	packaging/check-deb.sh $(DEB)

clean:
	cargo clean
	rm -rf app/dist app/admin.html app/node_modules end2end/node_modules end2end/test-results $(VENV)
