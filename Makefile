# SPDX-License-Identifier: GPL-2.0
#
# Rust VFIO mdev display drivers: build, test, demo.
#
#   make                 build the modules (against KDIR, default: our cached kernel)
#   make KDIR=/path      build them against your own Rust-enabled kernel build tree
#   make check-static    static checks only, no VM (rustfmt, clippy, unsafe lints, misuse, unit tests)
#   make check           everyday tests: static + one VM, no nested guest (8 min warm)
#   make check-full      everything (what CI runs, 41 min warm): every type, nested guests, QEMU
#                        end to end and migration, hostile guest, mdevctl, libvirt
#                        (MDEV_RS_ONLY="phase ..." runs only those phases: see
#                        tools/testing/vm/tiers.sh)
#   make demo            build everything, show a guest's screen through Rust mdpy
#   make bench           benchmark: C samples vs Rust modules, table in out/bench/
#   make fuzz            long fuzz run (FUZZ_OPS, default 10^6) of Rust and C, out/fuzz/
#   make kernel          fetch and build the test kernel (cached)
#   make clippy          build with CLIPPY=1 (warnings are errors)
#   make rustfmtcheck    check formatting
#   make selftests       build the kselftests (against KDIR)
#   make help            this list

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

.PHONY: modules all clean check check-static check-full demo bench fuzz kernel deps clippy rustfmt rustfmtcheck selftests help

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
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "No kernel build tree: run 'make kernel' or pass KDIR=" >&2; exit 1; }
	$(MAKE) -C tools/testing/selftests/vfio-mdev KHDR=$(KDIR)/usr/include \
		KSELFTEST=$$(readlink -f $(KDIR)/source)/tools/testing/selftests

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

deps:
	$(VM)/bootstrap-deps.sh

kernel: deps
	$(VM)/bootstrap-kernel.sh >/dev/null

check-static:
	$(VM)/run-tests.sh static

check:
	$(VM)/run-tests.sh check

check-full:
	$(VM)/run-tests.sh full

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
