# xdnat build.  `make` builds everything; `make demo` (as root) runs the demo
# topology; `make check` (as root) runs every test.  Both install missing Debian
# packages first (scripts/deps.sh, idempotent).

CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

# make SAN=1 builds into build-san/ so both flavours can coexist.
OUT       ?= $(if $(filter 1,$(SAN)),build-san,build)
PREFIX    ?= /usr/local
BPF_OBJ_DIR ?= $(PREFIX)/lib/xdnat

WARN      := -Wall -Wextra -Werror
# Release or `git describe`; printed by every program's --version.
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo 0.1)
VERSION   := $(VERSION)

# User space is built in folders by role (docs/ARCHITECTURE.md); each folder
# is a static library and a program links only the libraries it needs.
LOADER_DIRS := common store rsip daemon host cli
INC       := -Imaps $(addprefix -Iloader/,$(LOADER_DIRS)) -Ica -I$(OUT)
PKGS      := libbpf libelf zlib sqlite3 libcrypto libmicrohttpd inih libmnl libcurl json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -lsqlite3 -lcrypto -lmicrohttpd -linih -lmnl -lcurl -ljson-c)
# Hardening: fortified libc calls, stack protector, PIE, full RELRO.
HARDEN_CFLAGS := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
# make SAN=1: every program built with ASan/UBSan (selftests run the RSIP and
# CA end-to-end tests against those builds, see selftests/run_all.sh).
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ifeq ($(SAN),1)
CFLAGS    ?= -O1 -g
HARDEN_CFLAGS := -fstack-protector-strong -fPIE
EXTRA_FLAGS := $(SAN_FLAGS)
else
CFLAGS    ?= -O2 -g
EXTRA_FLAGS :=
endif
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) $(INC) $(PKG_CFLAGS) $(HARDEN_CFLAGS) $(EXTRA_FLAGS) \
             -DXDNAT_BPF_OBJ_DIR='"$(BPF_OBJ_DIR)"' -DXDNAT_VERSION='"$(VERSION)"'
LDFLAGS   += $(HARDEN_LDFLAGS) $(EXTRA_FLAGS)
LDLIBS    := $(PKG_LIBS) -lpthread
DEPFLAGS   = -MMD -MP
# BPF ISA v3 (32-bit jumps, ALU32): kernels >= 5.1; xdnat needs >= 5.15 anyway
# (README, Datapath: supported kernels).
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) $(WARN) \
             -Imaps -Ibpf $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/*.h bpf/lib/*.h) maps/xdnat_abi.h

# Sources of each library (every .c of the folder but the programs' mains).
COMMON_SRCS := $(wildcard loader/common/*.c)
STORE_SRCS  := $(wildcard loader/store/*.c)
RSIP_SRCS   := $(wildcard loader/rsip/*.c)
DAEMON_SRCS := $(filter-out loader/daemon/xdnatd.c,$(wildcard loader/daemon/*.c))
HOST_SRCS   := $(filter-out loader/host/xdnat_host_agent.c,$(wildcard loader/host/*.c))
CA_SRCS     := $(wildcard ca/*.c)
ALL_SRCS    := $(COMMON_SRCS) $(STORE_SRCS) $(RSIP_SRCS) $(DAEMON_SRCS) $(HOST_SRCS) $(CA_SRCS) \
               loader/daemon/xdnatd.c loader/host/xdnat_host_agent.c $(wildcard loader/cli/*.c) \
               $(wildcard ca/tools/*.c)

# Objects: $(OUT)/obj/<path>.o for the programs, $(OUT)/san/<path>.o (ASan +
# UBSan) for the unit tests; both with header dependencies (-MMD -MP).
obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))
san = $(patsubst %.c,$(OUT)/san/%.o,$(1))
$(OUT)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@
$(OUT)/san/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(DEPFLAGS) -c $< -o $@
-include $(shell find $(OUT)/obj $(OUT)/san -name '*.d' 2>/dev/null)
# The files that print --version are rebuilt when the version changes (a
# flag change alone would not make them out of date).
# The stamp is rewritten when make reads this file, and only when the
# version differs, so that `make -n` predicts exactly what `make` does.
VERSION_STAMP := $(OUT)/version.stamp
$(shell mkdir -p $(OUT) && (echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' > $(VERSION_STAMP)))
VERSION_USERS := $(shell grep -l XDNAT_VERSION $(ALL_SRCS) 2>/dev/null)
$(call obj,$(VERSION_USERS)) $(call san,$(VERSION_USERS)): $(VERSION_STAMP)

LIBS      := common store rsip daemon host ca
$(foreach l,$(LIBS),$(eval $(l)_LIB := $(OUT)/obj/lib$(l).a) $(eval $(l)_SANLIB := $(OUT)/san/lib$(l).a))
$(OUT)/obj/libcommon.a $(OUT)/san/libcommon.a: SRCS = $(COMMON_SRCS)
$(OUT)/obj/libstore.a  $(OUT)/san/libstore.a:  SRCS = $(STORE_SRCS)
$(OUT)/obj/librsip.a   $(OUT)/san/librsip.a:   SRCS = $(RSIP_SRCS)
$(OUT)/obj/libdaemon.a $(OUT)/san/libdaemon.a: SRCS = $(DAEMON_SRCS)
$(OUT)/obj/libhost.a   $(OUT)/san/libhost.a:   SRCS = $(HOST_SRCS)
$(OUT)/obj/libca.a     $(OUT)/san/libca.a:     SRCS = $(CA_SRCS)
.SECONDEXPANSION:
$(OUT)/obj/lib%.a: $$(call obj,$$(SRCS))
	@rm -f $@
	$(AR) rcs $@ $^
$(OUT)/san/lib%.a: $$(call san,$$(SRCS))
	@rm -f $@
	$(AR) rcs $@ $^
# Link a program from its main object and libraries (a group: the libraries
# reference one another, e.g. the store's counters and util).
link = $(CC) $(LDFLAGS) $(1) -Wl,--start-group $(2) -Wl,--end-group -o $@ $(LDLIBS) $(3)

BINS      := $(OUT)/xdnatd $(OUT)/xdnatctl $(OUT)/xdnat-host
CA_BINS   := $(OUT)/xdnat-ca $(OUT)/xdnat-verify $(OUT)/xdnat-peer
TEST_BINS := $(OUT)/test_datapath $(OUT)/test_util $(OUT)/test_rsip $(OUT)/test_corpus \
             $(OUT)/test_counters $(OUT)/test_rsip_alloc $(OUT)/test_ctl_sock $(OUT)/test_ca \
             $(OUT)/test_notice $(OUT)/test_rsip_ca $(OUT)/test_verify $(OUT)/test_opts $(OUT)/test_store \
             $(OUT)/test_store_etcd $(OUT)/test_cluster_elect \
             $(OUT)/test_mip

.PHONY: all deps demo check test unit e2e clean install uninstall
.DELETE_ON_ERROR:
# Keep the BPF objects: bpftool and the benchmarks use them too.
.SECONDARY: $(BPF_OBJS)

# The hostile clients of selftests/e2e_hostile_rsip.sh, the roaming
# datapath driver of e2e_roam_datapath.sh and the storm client of
# e2e_cluster_sync.sh and bench/cluster_bench.sh (not installed).
SELFTEST_TOOLS := $(OUT)/rsip-hostile $(OUT)/roam-tool $(OUT)/cluster-bench
all: $(BINS) $(CA_BINS) $(SELFTEST_TOOLS)

deps:
	@scripts/deps.sh

$(OUT):
	@mkdir -p $@

$(OUT)/%.bpf.o: bpf/%.bpf.c | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@
-include $(wildcard $(OUT)/*.bpf.d)

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(OUT)/xdnatd: $(call obj,loader/daemon/xdnatd.c) $(daemon_LIB) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/xdnatctl: $(call obj,$(wildcard loader/cli/*.c)) $(daemon_LIB) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	$(call link,$(filter %.o,$^),$(filter %.a,$^))
$(OUT)/xdnat-host: $(call obj,loader/host/xdnat_host_agent.c) $(host_LIB) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/rsip-hostile: $(call obj,selftests/rsip_hostile.c) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/roam-tool: $(call obj,selftests/roam_tool.c) $(common_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/cluster-bench: $(call obj,bench/cluster_bench.c) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
# Local CA tools (ca/, docs/LCA.md): operator CLI, remote-side verifier and
# revocation-notice listener; they need only OpenSSL and SQLite.
$(OUT)/xdnat-ca: $(call obj,ca/tools/xdnat_ca.c) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/xdnat-verify: $(call obj,ca/tools/xdnat_verify.c) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))
$(OUT)/xdnat-peer: $(call obj,ca/tools/xdnat_peer.c) $(ca_LIB)
	$(call link,$<,$(filter %.a,$^))

# Unit and packet tests, built with ASan/UBSan.
TEST_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g $(SAN_FLAGS) $(INC) $(PKG_CFLAGS) -Iselftests \
               -DXDNAT_BPF_OBJ_DIR='"$(BPF_OBJ_DIR)"' -DXDNAT_VERSION='"$(VERSION)"'
ALL_SANLIBS = $(daemon_SANLIB) $(rsip_SANLIB) $(store_SANLIB) $(common_SANLIB) $(ca_SANLIB)
test_link = $(CC) $(SAN_FLAGS) $(1) -Wl,--start-group $(2) -Wl,--end-group -o $@ -lcriterion $(LDLIBS)
$(OUT)/test_%: $(OUT)/san/selftests/test_%.o $(ALL_SANLIBS)
	$(call test_link,$<,$(ALL_SANLIBS))

# libFuzzer harness of the RSIP codec (docs/CONTROL-PLANE.md, Fuzzing).
# `make fuzz` runs it for FUZZ_SECONDS; `make fuzz-seeds` rewrites its seed
# corpus.  selftests/e2e_fuzz_rsip.sh (in `make check`) runs it for 30 s.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= $(CLANG)
FUZZ_BIN     := $(OUT)/fuzz_rsip_wire
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(INC)
RSIP_TEST_SRCS := loader/rsip/rsip_wire.c loader/rsip/rsip_auth.c loader/common/util.c
.PHONY: fuzz fuzz-seeds
fuzz: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) OUT=$(OUT) selftests/e2e_fuzz_rsip.sh
$(FUZZ_BIN): selftests/fuzz_rsip_wire.c $(RSIP_TEST_SRCS) $(wildcard loader/rsip/*.h) | $(OUT)
	$(FUZZ_CC) $(FUZZ_CFLAGS) selftests/fuzz_rsip_wire.c $(RSIP_TEST_SRCS) -o $@ -lcrypto
fuzz-seeds: $(OUT)/fuzz_rsip_seeds
	rm -rf selftests/fuzz/rsip_wire && mkdir -p selftests/fuzz/rsip_wire
	$(OUT)/fuzz_rsip_seeds selftests/fuzz/rsip_wire
$(OUT)/fuzz_rsip_seeds: selftests/fuzz_rsip_seeds.c $(RSIP_TEST_SRCS) $(wildcard loader/rsip/*.h) | $(OUT)
	$(CC) $(TEST_CFLAGS) selftests/fuzz_rsip_seeds.c $(RSIP_TEST_SRCS) -o $@ -lcrypto

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# The RSIP and CA end-to-end tests also run against the sanitizer build of
# the daemons (SAN_E2E in selftests/run_all.sh).
check: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS)
	@$(MAKE) --no-print-directory SAN=1 all
	@selftests/run_all.sh

test: check

clean:
	rm -rf $(OUT)

# ---------------------------------------------------------------- bench
# Benchmarks (docs/BENCHMARKS.md): `sudo make bench` prints one table;
# BENCH_ARGS go to bench/bench.sh (e.g. BENCH_ARGS=--smoke).
BENCH_OUT   := $(OUT)/bench
BENCH_SKELS := $(patsubst bench/%.bpf.c,$(BENCH_OUT)/%.skel.h,$(wildcard bench/*.bpf.c))
BENCH_BIN   := $(BENCH_OUT)/xdnat-bench

.PHONY: bench bench-build
bench: deps
	@$(MAKE) --no-print-directory bench-build
	@bench/bench.sh $(BENCH_ARGS)
bench-build: $(BENCH_BIN)
.PRECIOUS: $(BENCH_OUT)/%.bpf.o
$(BENCH_OUT)/%.bpf.o: bench/%.bpf.c bench/bench_common.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -Ibench -c $< -o $@
$(BENCH_OUT)/bench_cost.bpf.o: $(BPF_HDRS) # the router library (bpf/lib/)
$(BENCH_OUT)/%.skel.h: $(BENCH_OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@
$(BENCH_BIN): bench/xdnat_bench.c loader/common/abi_names.c bench/bench_common.h maps/xdnat_abi.h $(BENCH_SKELS) $(OUT)/xdnat_router.skel.h
	$(CC) $(CFLAGS) $(LDFLAGS) -Ibench -I$(BENCH_OUT) $< loader/common/abi_names.c -o $@ $(LDLIBS)

# Control-plane allocation rate (docs/CONTROL-PLANE.md, Performance); no
# root needed.  BENCH_RSIP_ARGS go to rsip-bench (e.g. --hosts 2000).
RSIP_BENCH      := $(BENCH_OUT)/rsip-bench
.PHONY: bench-rsip
bench-rsip: $(RSIP_BENCH)
	$(RSIP_BENCH) $(BENCH_RSIP_ARGS)
$(RSIP_BENCH): $(call obj,bench/rsip_bench.c) $(rsip_LIB) $(store_LIB) $(common_LIB) $(ca_LIB)
	@mkdir -p $(@D)
	$(call link,$<,$(filter %.a,$^))

# Cluster (docs/CLUSTER.md): allocations/s SQLite vs etcd and the time a
# change takes to reach the other router's maps; root (namespaces, etcd).
.PHONY: bench-cluster
bench-cluster: all
	bench/cluster_bench.sh $(BENCH_CLUSTER_ARGS)

# -------------------------------------------------------- man, install
# Man pages are generated from each command's --help (help2man) plus the
# extra sections in man/*.h2m, so the two can never disagree.
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MAN8       := $(patsubst $(OUT)/%,$(OUT)/man/%.8,$(BINS)) $(OUT)/man/xdnat-peer.8
# xdnat-ca and xdnat-verify print their --help as a man page already.
MAN8_RAW   := $(OUT)/man/xdnat-ca.8 $(OUT)/man/xdnat-verify.8
INST_BINS   = $(BINS) $(CA_BINS)
MAN5       := $(OUT)/man/xdnatd.conf.5
UNITS      := $(OUT)/systemd/xdnatd.service $(OUT)/systemd/xdnat-host.service

.PHONY: man
man: $(MAN8) $(MAN8_RAW) $(MAN5)
$(MAN8_RAW): $(OUT)/man/%.8: $(OUT)/% man/help2roff.py
	@mkdir -p $(@D)
	python3 man/help2roff.py ./$< 8 $(VERSION) > $@
$(OUT)/man/xdnatd.conf.5: $(OUT)/xdnatd man/xdnatd.conf.h2m
	@mkdir -p $(@D)
	help2man --no-info --section=5 --manual="File Formats" --version-string=$(VERSION) --help-option=--help-config \
		--include=man/xdnatd.conf.h2m --output=$@ ./$<
$(OUT)/man/%.8: $(OUT)/% man/%.h2m
	@mkdir -p $(@D)
	help2man --no-info --section=8 --version-string=$(VERSION) \
		--include=man/$*.h2m --output=$@ ./$<

# Regenerated every time: the paths depend on PREFIX, not on the file's age.
$(OUT)/systemd/%.service: systemd/%.service.in FORCE
	@mkdir -p $(@D)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@

install: all man $(UNITS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BPF_OBJ_DIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default \
		$(DESTDIR)$(SYSCONFDIR)/xdnat
	install -m 0755 $(INST_BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(BPF_OBJS) $(DESTDIR)$(BPF_OBJ_DIR)/
	install -m 0644 $(MAN8) $(MAN8_RAW) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/
	@# Never overwrite an operator's settings.
	for f in xdnatd xdnat-host; do \
		[ -e $(DESTDIR)$(SYSCONFDIR)/default/$$f ] || \
			install -m 0644 systemd/$$f.default $(DESTDIR)$(SYSCONFDIR)/default/$$f; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/xdnat/xdnatd.conf ] || \
		install -m 0644 systemd/xdnatd.conf.example $(DESTDIR)$(SYSCONFDIR)/xdnat/xdnatd.conf

FORCE:

uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(notdir $(INST_BINS)))
	rm -f $(addprefix $(DESTDIR)$(BPF_OBJ_DIR)/,$(notdir $(BPF_OBJS)))
	-rmdir $(DESTDIR)$(BPF_OBJ_DIR) 2>/dev/null
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8) $(MAN8_RAW)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS)))
	@echo "uninstall: $(SYSCONFDIR)/xdnat/ and $(SYSCONFDIR)/default/xdnat* are kept (your settings)"
