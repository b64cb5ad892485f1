# xdnat build.  `make` builds everything; `make demo` (as root) runs the demo
# topology; `make check` (as root) runs every test.  Both install missing Debian
# packages first (scripts/deps.sh, idempotent).

CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

OUT       := build
PREFIX    ?= /usr/local
BPF_OBJ_DIR ?= $(PREFIX)/lib/xdnat

WARN      := -Wall -Wextra -Werror
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) -Imaps -Iloader -I$(OUT) \
             -DXDNAT_BPF_OBJ_DIR='"$(BPF_OBJ_DIR)"'
LDLIBS    := -lbpf -lelf -lz -lsqlite3 -lcrypto -lmicrohttpd -linih
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) \
             -Imaps -Ibpf $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/*.h) maps/xdnat_abi.h

LIB_SRCS  := loader/util.c loader/pins.c loader/netcfg.c \
             loader/rsip_wire.c loader/rsip_auth.c loader/rsip_store.c loader/rsip_server.c \
             loader/rsip_maps.c loader/rsip_client.c loader/httpd.c loader/metrics.c loader/counters.c
LIB_OBJS  := $(patsubst loader/%.c,$(OUT)/%.o,$(LIB_SRCS))
BINS      := $(OUT)/xdnatd $(OUT)/xdnatctl $(OUT)/xdnat-host

TEST_BINS := $(OUT)/test_datapath $(OUT)/test_util $(OUT)/test_rsip $(OUT)/test_corpus

.PHONY: all deps demo check test unit e2e clean install uninstall
.DELETE_ON_ERROR:
# Keep the BPF objects: bpftool and the benchmarks use them too.
.SECONDARY: $(BPF_OBJS)

all: $(BINS)

deps:
	@scripts/deps.sh

$(OUT):
	@mkdir -p $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(OUT)/%.o: loader/%.c $(wildcard loader/*.h) maps/xdnat_abi.h $(SKELS) | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/xdnatd: $(OUT)/xdnatd.o $(OUT)/fragq.o $(OUT)/ca_plane.o $(OUT)/ca_notify.o $(OUT)/ctl_sock.o $(LIB_OBJS) \
		ca/lca.c ca/lca_ext.c ca/notice.c
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lpthread
$(OUT)/xdnatctl: $(OUT)/xdnatctl.o $(OUT)/ctl_sock.o $(LIB_OBJS) ca/lca.c ca/lca_ext.c
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)
$(OUT)/xdnat-host: $(OUT)/xdnat_host_agent.o $(OUT)/host_reasm.o $(OUT)/swan_conf.o $(OUT)/host_cert.o \
		$(LIB_OBJS) ca/lca.c ca/lca_ext.c
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)
$(OUT)/host_cert.o $(OUT)/ca_plane.o $(OUT)/xdnatd.o $(OUT)/xdnatctl.o $(OUT)/ca_notify.o \
	$(OUT)/ctl_sock.o: CFLAGS += -Ica

# Unit and packet tests, built with ASan/UBSan.
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TEST_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g $(SAN) -Imaps -Iloader -I$(OUT) -Iselftests
$(OUT)/test_datapath: selftests/test_datapath.c selftests/pkt.h $(LIB_SRCS) $(SKELS) maps/xdnat_abi.h
	$(CC) $(TEST_CFLAGS) selftests/test_datapath.c $(LIB_SRCS) -o $@ -lcriterion $(LDLIBS)
$(OUT)/test_corpus: selftests/test_corpus.c selftests/pkt.h $(SKELS) maps/xdnat_abi.h
	$(CC) $(TEST_CFLAGS) selftests/test_corpus.c -o $@ -lcriterion $(LDLIBS)
$(OUT)/test_util: selftests/test_util.c $(LIB_SRCS) maps/xdnat_abi.h
	$(CC) $(TEST_CFLAGS) selftests/test_util.c $(LIB_SRCS) -o $@ -lcriterion $(LDLIBS)
# Counter totals across map generations (loader/counters.c), fake values.
TEST_BINS += $(OUT)/test_counters
$(OUT)/test_counters: selftests/test_counters.c $(LIB_SRCS) loader/counters.h maps/xdnat_abi.h | $(OUT)
	$(CC) $(TEST_CFLAGS) selftests/test_counters.c $(LIB_SRCS) -o $@ -lcriterion $(LDLIBS)
RSIP_TEST_SRCS := loader/rsip_wire.c loader/rsip_auth.c loader/util.c
$(OUT)/test_rsip: selftests/test_rsip.c $(RSIP_TEST_SRCS) $(wildcard loader/rsip_*.h) | $(OUT)
	$(CC) $(TEST_CFLAGS) selftests/test_rsip.c $(RSIP_TEST_SRCS) -o $@ -lcriterion -lcrypto
TEST_BINS += $(OUT)/test_rsip_alloc
RSIP_ALLOC_SRCS := $(RSIP_TEST_SRCS) loader/rsip_store.c loader/rsip_server.c
$(OUT)/test_rsip_alloc: selftests/test_rsip_alloc.c $(RSIP_ALLOC_SRCS) $(wildcard loader/rsip_*.h) | $(OUT)
	$(CC) $(TEST_CFLAGS) selftests/test_rsip_alloc.c $(RSIP_ALLOC_SRCS) -o $@ -lcriterion -lcrypto -lsqlite3

# xdnatd's control socket: request parser, responses, JSON reader.
TEST_BINS += $(OUT)/test_ctl_sock
$(OUT)/test_ctl_sock: selftests/test_ctl_sock.c loader/ctl_sock.c $(LIB_SRCS) ca/lca.c ca/lca_ext.c \
		loader/ctl_sock.h maps/xdnat_abi.h | $(OUT)
	$(CC) $(TEST_CFLAGS) -Ica selftests/test_ctl_sock.c loader/ctl_sock.c $(LIB_SRCS) ca/lca.c \
		ca/lca_ext.c -o $@ -lcriterion $(LDLIBS)

# Local CA (ca/, docs/LCA.md): operator CLI, remote-side verifier, unit tests.
CA_SRCS   := ca/lca.c ca/lca_ext.c ca/verify.c
CA_HDRS   := $(wildcard ca/*.h)
CA_BINS   := $(OUT)/xdnat-ca $(OUT)/xdnat-verify
TEST_BINS += $(OUT)/test_ca
all: $(CA_BINS)
$(OUT)/xdnat-ca: ca/xdnat_ca.c $(CA_SRCS) $(CA_HDRS) | $(OUT)
	$(CC) $(CFLAGS) -Ica ca/xdnat_ca.c $(CA_SRCS) -o $@ -lcrypto -lsqlite3
$(OUT)/xdnat-verify: ca/xdnat_verify.c $(CA_SRCS) $(CA_HDRS) | $(OUT)
	$(CC) $(CFLAGS) -Ica ca/xdnat_verify.c $(CA_SRCS) -o $@ -lcrypto -lsqlite3
$(OUT)/test_ca: selftests/test_ca.c $(CA_SRCS) $(CA_HDRS) | $(OUT)
	$(CC) $(TEST_CFLAGS) -Ica selftests/test_ca.c $(CA_SRCS) -o $@ -lcriterion -lcrypto -lsqlite3
# Revocation notices: the listener for remote systems, and their tests.
CA_BINS += $(OUT)/xdnat-peer
all: $(OUT)/xdnat-peer
$(OUT)/xdnat-peer: ca/xdnat_peer.c ca/notice.c $(CA_SRCS) $(CA_HDRS) | $(OUT)
	$(CC) $(CFLAGS) -Ica ca/xdnat_peer.c ca/notice.c $(CA_SRCS) -o $@ -lcrypto -lsqlite3
TEST_BINS += $(OUT)/test_notice
$(OUT)/test_notice: selftests/test_notice.c ca/notice.c $(CA_SRCS) $(CA_HDRS) | $(OUT)
	$(CC) $(TEST_CFLAGS) -Ica selftests/test_notice.c ca/notice.c $(CA_SRCS) -o $@ -lcriterion -lcrypto -lsqlite3
# Host certificates over RSIP: client, server and xdnatd's CA glue together.
TEST_BINS += $(OUT)/test_rsip_ca
RSIP_CA_SRCS := $(RSIP_ALLOC_SRCS) loader/rsip_client.c loader/ca_plane.c $(CA_SRCS)
$(OUT)/test_rsip_ca: selftests/test_rsip_ca.c $(RSIP_CA_SRCS) $(CA_HDRS) $(wildcard loader/*.h) | $(OUT)
	$(CC) $(TEST_CFLAGS) -Ica selftests/test_rsip_ca.c $(RSIP_CA_SRCS) -o $@ -lcriterion -lcrypto -lsqlite3 -lpthread

# libFuzzer harness of the RSIP codec (docs/CONTROL-PLANE.md, Fuzzing).
# `make fuzz` runs it for FUZZ_SECONDS; `make fuzz-seeds` rewrites its seed
# corpus.  selftests/e2e_fuzz_rsip.sh (in `make check`) runs it for 30 s.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= $(CLANG)
FUZZ_BIN     := $(OUT)/fuzz_rsip_wire
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Imaps -Iloader
.PHONY: fuzz fuzz-seeds
fuzz: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) OUT=$(OUT) selftests/e2e_fuzz_rsip.sh
$(FUZZ_BIN): selftests/fuzz_rsip_wire.c $(RSIP_TEST_SRCS) $(wildcard loader/rsip_*.h) | $(OUT)
	$(FUZZ_CC) $(FUZZ_CFLAGS) selftests/fuzz_rsip_wire.c $(RSIP_TEST_SRCS) -o $@ -lcrypto
fuzz-seeds: $(OUT)/fuzz_rsip_seeds
	rm -rf selftests/fuzz/rsip_wire && mkdir -p selftests/fuzz/rsip_wire
	$(OUT)/fuzz_rsip_seeds selftests/fuzz/rsip_wire
$(OUT)/fuzz_rsip_seeds: selftests/fuzz_rsip_seeds.c $(RSIP_TEST_SRCS) $(wildcard loader/rsip_*.h) | $(OUT)
	$(CC) $(TEST_CFLAGS) selftests/fuzz_rsip_seeds.c $(RSIP_TEST_SRCS) -o $@ -lcrypto

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

check: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS)
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
$(BENCH_OUT)/bench_cost.bpf.o: bpf/xdnat_router.bpf.c $(BPF_HDRS) # inlines the router
$(BENCH_OUT)/%.skel.h: $(BENCH_OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@
$(BENCH_BIN): bench/xdnat_bench.c bench/bench_common.h maps/xdnat_abi.h $(BENCH_SKELS) $(OUT)/xdnat_router.skel.h
	$(CC) $(CFLAGS) -Ibench -I$(BENCH_OUT) $< -o $@ $(LDLIBS)

# Control-plane allocation rate (docs/CONTROL-PLANE.md, Performance); no
# root needed.  BENCH_RSIP_ARGS go to rsip-bench (e.g. --hosts 2000).
RSIP_BENCH      := $(BENCH_OUT)/rsip-bench
RSIP_BENCH_SRCS := loader/rsip_wire.c loader/rsip_auth.c loader/rsip_store.c loader/rsip_server.c \
                   loader/rsip_client.c loader/util.c
.PHONY: bench-rsip
bench-rsip: $(RSIP_BENCH)
	$(RSIP_BENCH) $(BENCH_RSIP_ARGS)
$(RSIP_BENCH): bench/rsip_bench.c $(RSIP_BENCH_SRCS) $(wildcard loader/rsip_*.h) maps/xdnat_abi.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) bench/rsip_bench.c $(RSIP_BENCH_SRCS) -o $@ -lcrypto -lsqlite3

# -------------------------------------------------------- man, install
# Man pages are generated from each command's --help (help2man) plus the
# extra sections in man/*.h2m, so the two can never disagree.
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo 0.1)
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
	help2man --no-info --section=5 --version-string=$(VERSION) --help-option=--help-config \
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
