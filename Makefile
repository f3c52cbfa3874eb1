# SPDX-License-Identifier: GPL-2.0
#
# Rust VFIO mdev display drivers: build, test, demo.
#
#   make                 build the modules against KDIR (default: the running kernel's
#                        /lib/modules/$(uname -r)/build, which must be a Rust-enabled tree)
#   make KDIR=/path      build them against another Rust-enabled kernel build tree
#   make install         install the built modules into /lib/modules/<KDIR's release>/updates/
#                        (INSTALL_MOD_PATH, INSTALL_MOD_DIR honoured) and run depmod
#   make check-static    static checks only, no VM (rustfmt, clippy, unsafe lints, misuse, unit tests)
#   make check           everyday tests: static + one VM, no nested guest (10 min warm)
#   make check-full      everything (what CI runs, 60-72 min warm): every type, nested guests, QEMU
#                        end to end and migration, hostile guest, mdevctl, libvirt,
#                        Debian's own kernel (phase debian), a clean Debian 12 chroot (bookworm)
#                        (MDEV_RS_ONLY="phase ..." runs only those phases: see
#                        tools/testing/vm/tiers.sh)
#   make demo            build everything, show a guest's screen through Rust mdpy
#   make bench           benchmark: C samples vs Rust modules, table in out/bench/
#   make fuzz            long fuzz run (FUZZ_OPS, default 10^6) of Rust and C, out/fuzz/
#   make guest-image     a small guest kernel + initramfs (mdpy-fb, bochs DRM, a shell) in
#                        out/guest-image/, and the QEMU command lines that boot it
#   make kernel          fetch and build the test kernel (cached), print its path
#   make debian-kernel   build the modules for Debian's own kernel (linux-image-7.3.x+deb13-amd64,
#                        trixie-backports) into out/debian/: its Rust metadata reproduced
#                        with Debian's rustc 1.85.1 in a trixie chroot (root: debootstrap; cached)
#   make debian-install  install what make debian-kernel built into Debian's module tree,
#                        /lib/modules/<its release>/updates/ (INSTALL_MOD_PATH honoured), and depmod
#   make kernel-dir      print the cached test kernel's path (make KDIR=$(make -s kernel-dir))
#   make clippy          build with CLIPPY=1 (warnings are errors; against KDIR, default: the test kernel)
#   make rustfmtcheck    check formatting
#   make selftests       build the kselftests (against KDIR, default: the test kernel)
#   make help            this list, the default KDIR and the cached test kernel
#
# The test harness (check*, demo, bench, fuzz) always builds against its own
# cached test kernel, whatever KDIR says.

SHELL := /bin/bash
TOP := $(CURDIR)
VM := $(TOP)/tools/testing/vm
ENV := source $(VM)/env.sh;

RUSTC ?= /usr/bin/rustc
BINDGEN ?= bindgen
CLIPPY_DRIVER ?= /usr/bin/clippy-driver
KMAKE_VARS = RUSTC=$(RUSTC) BINDGEN=$(BINDGEN) CLIPPY_DRIVER=$(CLIPPY_DRIVER)

# KDIR: a kernel build tree. Default: the running kernel's, as for every
# out-of-tree module; the test harness's own targets (clippy, selftests)
# default to the test kernel that `make kernel` caches (TEST_KDIR).
RUNNING_KDIR := /lib/modules/$(shell uname -r)/build
TEST_KDIR = $(shell $(ENV) $(VM)/bootstrap-kernel.sh --print-only 2>/dev/null)
ifeq ($(strip $(KDIR)),)
KDIR = $(RUNNING_KDIR)
clippy selftests: KDIR = $(TEST_KDIR)
endif

# A recipe's first line: fails, saying why and what to do, unless KDIR is a
# kernel build tree we can build Rust modules against (CONFIG_RUST=y and the
# kernel crate's metadata, which distribution header packages such as
# Debian's linux-headers do not ship).
define require_kdir
@kdir='$(KDIR)' why=; \
if [ -z "$$kdir" ]; then why="no kernel build tree (KDIR is empty)"; \
elif [ ! -f "$$kdir/Makefile" ]; then why="no kernel build tree at $$kdir"; \
elif ! grep -qx 'CONFIG_RUST=y' "$$kdir/.config" 2>/dev/null; then \
	why="$$kdir is not a Rust-enabled kernel build tree (no CONFIG_RUST=y in its .config)"; \
elif [ ! -e "$$kdir/rust/libkernel.rmeta" ]; then \
	why="$$kdir has CONFIG_RUST=y but not the kernel crate's metadata (rust/libkernel.rmeta): distribution header packages do not ship it"; \
fi; \
[ -z "$$why" ] || { \
	echo "error: $$why." >&2; \
	echo "  Pass a Rust-enabled kernel build tree, built with the same rustc: $(strip make $(MAKECMDGOALS)) KDIR=/path/to/linux/build" >&2; \
	t='$(TEST_KDIR)'; \
	if [ -n "$$t" ]; then echo "  or the cached test kernel: $(strip make $(MAKECMDGOALS)) KDIR=$$t" >&2; \
	else echo "  or build the test kernel once (make kernel, about 15 minutes; make kernel-dir prints its path), then pass it as KDIR" >&2; fi; \
	exit 1; }
endef

.PHONY: modules all install clean check check-static check-full demo bench fuzz guest-image kernel kernel-dir debian-kernel debian-install deps clippy rustfmt rustfmtcheck selftests help

all: modules

modules:
	$(require_kdir)
	$(ENV) flock $(TOP)/.build.lock $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) modules

clippy:
	$(require_kdir)
	$(ENV) $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) clean
	$(ENV) set -o pipefail; $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) CLIPPY=1 modules 2>&1 | tee $(TOP)/.clippy.log
	@! grep -E '^(warning|error)' $(TOP)/.clippy.log || { echo "clippy: warnings found" >&2; exit 1; }

rustfmt:
	$(ENV) find mdpy mdpy-fb mbochs rust tools -name '*.rs' -not -path '*/generated/*' | xargs $${RUSTFMT:-rustfmt} --edition 2021 --config-path $(TOP)

rustfmtcheck:
	$(ENV) find mdpy mdpy-fb mbochs rust tools -name '*.rs' -not -path '*/generated/*' | xargs $${RUSTFMT:-rustfmt} --edition 2021 --config-path $(TOP) --check

selftests:
	@test -n "$(KDIR)" -a -f "$(KDIR)/usr/include/linux/vfio.h" || { echo "error: no uapi headers in '$(KDIR)/usr/include': run 'make kernel' or pass KDIR=<a kernel build tree after make headers_install>" >&2; exit 1; }
	$(MAKE) -C tools/testing/selftests/vfio-mdev KHDR=$(KDIR)/usr/include \
		KSELFTEST=$$(readlink -f $(KDIR)/source)/tools/testing/selftests

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))
	@echo
	@echo "KDIR of make and make install: $(KDIR)$(if $(wildcard $(KDIR)/Makefile),, (missing))"
	@t='$(TEST_KDIR)'; echo "cached test kernel (make kernel-dir): $${t:-none yet (make kernel builds it)}"

kernel-dir:
	@t='$(TEST_KDIR)'; [ -n "$$t" ] || { echo "error: no cached test kernel yet: make kernel builds it (about 15 minutes, once)" >&2; exit 1; }; echo "$$t"

deps:
	$(VM)/bootstrap-deps.sh

# The modules are built in a copy of the sources outside the tree (Kbuild's
# clean of M=$(TOP) would delete them), then copied to out/debian/; one copy
# per checkout (a shell expression: the cache's path is env.sh's).
DEBIAN_MODS = $$MDEV_RS_CACHE/debian-modules-$$(printf %s "$(TOP)" | sha256sum | cut -c1-12)
debian-kernel:
	@$(ENV) d=$(DEBIAN_MODS); \
	k=$$($(VM)/bootstrap-debian-kernel.sh --modules $$d) && mkdir -p $(TOP)/out/debian && \
	cp $$d/mdpy/mdpy.ko $$d/mbochs/mbochs.ko $$d/mdpy-fb/mdpy-fb.ko $(TOP)/out/debian/ && \
	echo "Debian kernel build tree: $$k ($$(cat $$k/debian-krel)); modules: $(TOP)/out/debian/{mdpy,mbochs,mdpy-fb}.ko"

# `make install` of those modules, run in the same chroot with the same tree.
debian-install:
	@$(ENV) d=$(DEBIAN_MODS); \
	[ -f $$d/modules.order ] || { echo "error: nothing built for Debian's kernel: run make debian-kernel first" >&2; exit 1; }; \
	$(VM)/bootstrap-debian-kernel.sh --install $$d $(or $(INSTALL_MOD_PATH),/) > /dev/null && \
	echo "installed into $(or $(INSTALL_MOD_PATH),/): $$(sed -n 's|^.*INSTALL .*/lib/modules/||p' $$d/install.log | tr '\n' ' ')"

kernel: deps
	@t=$$($(VM)/bootstrap-kernel.sh) && echo "test kernel: $$t (build against it: make KDIR=$$t)"

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

guest-image:
	$(VM)/build-guest-image.sh

# The kernel's modules_install (M=) puts the modules in
# $(INSTALL_MOD_PATH)/lib/modules/<release>/$(INSTALL_MOD_DIR) (default
# updates/, which depmod prefers to the kernel's own samples of the same
# names) and runs depmod, unless the tree has no System.map (distribution
# header packages): then depmod is run here. Installs what `make` built for
# this KDIR; never builds (`make && sudo make install`).
install:
	@test -f "$(KDIR)/include/config/kernel.release" || { echo "error: no kernel build tree at '$(KDIR)': pass the KDIR the modules were built against" >&2; exit 1; }
	@rel=$$(cat "$(KDIR)/include/config/kernel.release"); \
	test -s modules.order || { echo "error: no module built: run make KDIR=$(KDIR) first" >&2; exit 1; }; \
	for o in $$(cat modules.order); do ko=$${o%.o}.ko; \
		[ -f "$$ko" ] || { echo "error: $$ko is not built: run make KDIR=$(KDIR) first" >&2; exit 1; }; \
		v=$$(PATH=$$PATH:/sbin:/usr/sbin modinfo -F vermagic "$$ko" | cut -d' ' -f1); \
		[ "$$v" = "$$rel" ] || { echo "error: $$ko was built for kernel $$v, KDIR $(KDIR) is $$rel: run make KDIR=$(KDIR) first" >&2; exit 1; }; \
	done
	flock $(TOP)/.build.lock $(MAKE) -C $(KDIR) M=$(TOP) $(KMAKE_VARS) modules_install
	@if [ ! -r "$(KDIR)/System.map" ]; then rel=$$(cat "$(KDIR)/include/config/kernel.release"); \
		echo "  DEPMOD  $$rel$(if $(INSTALL_MOD_PATH), (in $(INSTALL_MOD_PATH)))"; \
		PATH=$$PATH:/sbin:/usr/sbin depmod -a $(if $(INSTALL_MOD_PATH),-b "$(INSTALL_MOD_PATH)") "$$rel"; fi

# Kbuild's clean of M= works with any kernel tree: KDIR's, else the test kernel's.
clean:
	@k='$(KDIR)'; [ -f "$$k/Makefile" ] || k='$(TEST_KDIR)'; \
	if [ -n "$$k" ] && [ -f "$$k/Makefile" ]; then $(MAKE) -C "$$k" M=$(TOP) clean; fi
	rm -rf rust/generated .clippy.log
	-$(MAKE) -C tools/testing/selftests/vfio-mdev clean
	-$(MAKE) -C tools/testing/bench clean
