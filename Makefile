# SPDX-License-Identifier: GPL-2.0
#
# Rust VFIO mdev display drivers: build, test, demo.
#
#   make                 build the modules (against KDIR, default: our cached kernel)
#   make KDIR=/path      build them against your own Rust-enabled kernel build tree
#   make check           the test suite: kselftests on C and Rust mdpy + end to end
#   make demo            build everything, show a guest's screen through Rust mdpy
#   make bench           benchmark: C samples vs Rust modules, table in out/bench/
#   make fuzz            long fuzz run (FUZZ_OPS, default 10^6) of Rust and C, out/fuzz/
#   make kernel          fetch and build the test kernel (cached)
#   make clippy          build with CLIPPY=1 (warnings are errors)
#   make rustfmtcheck    check formatting

SHELL := /bin/bash
TOP := $(CURDIR)
VM := $(TOP)/tools/testing/vm
ENV := source $(VM)/env.sh;

RUSTC ?= /usr/bin/rustc
BINDGEN ?= bindgen
CLIPPY_DRIVER ?= /usr/bin/clippy-driver
KMAKE_VARS = RUSTC=$(RUSTC) BINDGEN=$(BINDGEN) CLIPPY_DRIVER=$(CLIPPY_DRIVER)

# KDIR: a kernel build tree. Default: the one `make kernel` caches.
ifeq ($(KDIR),)
KDIR = $(shell $(ENV) $(VM)/bootstrap-kernel.sh --print-only 2>/dev/null)
endif

.PHONY: modules all clean check demo bench fuzz kernel deps clippy rustfmt rustfmtcheck selftests

all: modules

modules:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "No kernel build tree: run 'make kernel' or pass KDIR=/path/to/linux" >&2; exit 1; }
	$(ENV) flock $(TOP)/.build.lock $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) modules

clippy:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "No kernel build tree: run 'make kernel' or pass KDIR=" >&2; exit 1; }
	$(ENV) $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) clean
	$(ENV) set -o pipefail; $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) CLIPPY=1 modules 2>&1 | tee $(TOP)/.clippy.log
	@! grep -E '^(warning|error)' $(TOP)/.clippy.log || { echo "clippy: warnings found" >&2; exit 1; }

rustfmt:
	$(ENV) find mdpy mdpy-fb mbochs rust tools -name '*.rs' -not -path '*/generated/*' | xargs $${RUSTFMT:-rustfmt} --edition 2021 --config-path $(TOP)

rustfmtcheck:
	$(ENV) find mdpy mdpy-fb mbochs rust tools -name '*.rs' -not -path '*/generated/*' | xargs $${RUSTFMT:-rustfmt} --edition 2021 --config-path $(TOP) --check

selftests:
	$(MAKE) -C tools/testing/selftests/vfio-mdev

deps:
	$(VM)/bootstrap-deps.sh

kernel: deps
	$(VM)/bootstrap-kernel.sh >/dev/null

check:
	$(VM)/run-tests.sh

demo:
	$(VM)/run-demo.sh

bench:
	$(VM)/run-bench.sh

fuzz:
	$(VM)/run-fuzz.sh

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(TOP) clean; fi
	rm -rf rust/generated .clippy.log
	-$(MAKE) -C tools/testing/selftests/vfio-mdev clean
	-$(MAKE) -C tools/testing/bench clean
