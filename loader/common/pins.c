// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pinned maps of one router instance, and host/block management on
 * them.  The port and SPI arrays are BPF_F_MMAPABLE: user space reads and
 * writes their 4-byte owner slots in place (single aligned stores, which the
 * datapath sees atomically), so listing a full port space costs no syscalls.
 *
 * One writer (loader/daemon/writer.h): the functions that change the maps
 * check, then write.  That is atomic only because a single process writes
 * an instance at a time: xdnatd (its control socket and its RSIP server run
 * in one thread) or, with no xdnatd running, xdnatctl holding the instance
 * lock.  The datapath only reads, and sees each 4-byte owner slot change in
 * one store.  Do not call them from a second writer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdnat.h"
#include "pins_priv.h"

int xd_pin_dir(const char *base, const char *instance, char *buf, size_t len)
{
	int n;

	if (!xd_valid_instance(instance)) {
		xd_err("invalid instance name '%s' (use 1-32 of [A-Za-z0-9_.-])",
		       instance ? instance : "");
		return -EINVAL;
	}
	n = snprintf(buf, len, "%s/%s", base ? base : XDNAT_PIN_BASE, instance);
	if (n < 0 || (size_t)n >= len) {
		xd_err("pin directory path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static int open_pin(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		xd_err("cannot open pinned map %s: %s", path, strerror(errno));
	return fd;
}

int xd_pins_check_abi(const char *dir)
{
	const size_t at = offsetof(struct xdnat_router_cfg, abi_version);
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info), zero = 0, have = 1; /* 1: before versioning */
	unsigned char val[4096];
	char path[512];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, XDNAT_MAP_INFO);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* nothing pinned to reuse */
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		rc = -errno;
		xd_err("cannot query %s: %s", path, strerror(-rc));
		goto out;
	}
	/* The version sits where version 2 put it in every later layout. */
	if (info.value_size >= at + sizeof(have) && info.value_size <= sizeof(val)) {
		if (bpf_map_lookup_elem(fd, &zero, val)) {
			rc = -errno;
			xd_err("cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		memcpy(&have, val + at, sizeof(have));
		/* 0: loaded but not yet published (a crash right after load). */
		if (!have && info.value_size == sizeof(struct xdnat_router_cfg))
			have = XDNAT_ABI_VERSION;
	}
	if (have != XDNAT_ABI_VERSION) {
		xd_err("the maps pinned in %s have map ABI version %u, this build uses %u: "
		       "they cannot be reused.  To upgrade: stop the running xdnatd, remove %s, "
		       "and start this one on the same --state-dir (it rebuilds the hosts and "
		       "keeps the counter totals from the state database)",
		       dir, have, XDNAT_ABI_VERSION, dir);
		rc = -EPROTO;
	}
out:
	close(fd);
	return rc;
}

/* mmap views of the owner arrays, indexed like the maps. */
int xd_view_map(int fd, struct owner_view *v)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);

	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		xd_err("cannot query map: %s", strerror(errno));
		return -errno;
	}
	if (info.value_size != sizeof(struct xdnat_owner) || !(info.map_flags & BPF_F_MMAPABLE)) {
		xd_err("map %s has an unexpected layout (value %u bytes, flags %#x): "
		       "xdnatd and xdnatctl come from different builds?",
		       info.name, info.value_size, info.map_flags);
		return -EPROTO;
	}
	v->n = info.max_entries;
	v->len = ((size_t)info.max_entries * sizeof(struct xdnat_owner) + page - 1) & ~(size_t)(page - 1);
	v->slots = mmap(NULL, v->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (v->slots == MAP_FAILED) {
		v->slots = NULL;
		xd_err("cannot mmap map %s: %s", info.name, strerror(errno));
		return -errno;
	}
	return 0;
}

void xd_unview(struct owner_view *v)
{
	if (v->slots)
		munmap(v->slots, v->len);
	v->slots = NULL;
}

int xd_maps_open(const char *base, const char *instance, struct xd_maps *m)
{
	char dir[256];
	__u32 zero = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	m->info = m->ports = m->spis = m->hosts = m->lan_idx = m->hstats = m->stats = m->host_nh = -1;
	m->coa = m->coa_idx = -1;
	rc = xd_pin_dir(base, instance, dir, sizeof(dir));
	if (rc)
		return rc;
	if (access(dir, F_OK)) {
		if (errno == EACCES || errno == EPERM) {
			xd_err("permission denied: instance '%s' needs root (its pins in %s are root's)",
			       instance, dir);
			return -EACCES;
		}
		xd_err("no xdnat instance '%s' (%s does not exist): is xdnatd running?",
		       instance, dir);
		return -ENOENT;
	}
	if ((m->info = open_pin(dir, XDNAT_MAP_INFO)) < 0 ||
	    (m->ports = open_pin(dir, XDNAT_MAP_PORTS)) < 0 ||
	    (m->spis = open_pin(dir, XDNAT_MAP_SPIS)) < 0 ||
	    (m->hosts = open_pin(dir, XDNAT_MAP_HOSTS)) < 0 ||
	    (m->lan_idx = open_pin(dir, XDNAT_MAP_LAN_IDX)) < 0 ||
	    (m->hstats = open_pin(dir, XDNAT_MAP_HSTATS)) < 0 ||
	    (m->stats = open_pin(dir, XDNAT_MAP_STATS)) < 0) {
		xd_maps_close(m);
		return -ENOENT;
	}
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/%s", dir, XDNAT_MAP_HOST_NH);
		m->host_nh = bpf_obj_get(p); /* optional: a cache */
		/* Optional too: xd_coa_* say so when they are missing. */
		snprintf(p, sizeof(p), "%s/%s", dir, XDNAT_MAP_COA);
		m->coa = bpf_obj_get(p);
		snprintf(p, sizeof(p), "%s/%s", dir, XDNAT_MAP_COA_IDX);
		m->coa_idx = bpf_obj_get(p);
	}
	if (bpf_map_lookup_elem(m->info, &zero, &m->cfg)) {
		xd_err("cannot read %s/%s: %s", dir, XDNAT_MAP_INFO, strerror(errno));
		xd_maps_close(m);
		return -EIO;
	}
	if (m->cfg.n_gaddrs == 0 || m->cfg.n_gaddrs > XDNAT_MAX_GADDRS ||
	    m->cfg.spi_block_bits < XDNAT_MIN_SPI_BITS || m->cfg.spi_block_bits > XDNAT_MAX_SPI_BITS) {
		xd_err("instance '%s' has no valid configuration yet (xdnatd still starting?)", instance);
		xd_maps_close(m);
		return -EAGAIN;
	}
	m->ncpus = libbpf_num_possible_cpus();
	if (m->ncpus <= 0) {
		xd_err("cannot count CPUs: %s", strerror(-m->ncpus));
		xd_maps_close(m);
		return -EIO;
	}
	return 0;
}

void xd_maps_close(struct xd_maps *m)
{
	int *fds[] = { &m->info, &m->ports, &m->spis, &m->hosts, &m->lan_idx, &m->hstats, &m->stats,
		       &m->host_nh, &m->coa, &m->coa_idx };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int xd_gaddr_index(const struct xd_maps *m, uint32_t addr_be)
{
	for (uint32_t i = 0; i < m->cfg.n_gaddrs && i < XDNAT_MAX_GADDRS; i++)
		if (m->cfg.gaddrs[i] == addr_be)
			return (int)i;
	return -1;
}

int xd_host_get(struct xd_maps *m, uint32_t id, struct xdnat_host *h)
{
	if (id == XDNAT_HOST_NONE || id >= m->cfg.max_hosts)
		return -ERANGE;
	if (bpf_map_lookup_elem(m->hosts, &id, h))
		return -errno;
	return (h->flags & XDNAT_HOST_F_VALID) ? 0 : -ENOENT;
}

static int check_id(struct xd_maps *m, uint32_t id)
{
	if (id == XDNAT_HOST_NONE || id >= m->cfg.max_hosts) {
		xd_err("host id %u out of range (1-%u)", id, m->cfg.max_hosts - 1);
		return -ERANGE;
	}
	return 0;
}

int xd_need_host(struct xd_maps *m, uint32_t id, struct xdnat_host *h)
{
	int rc = check_id(m, id);

	if (rc)
		return rc;
	rc = xd_host_get(m, id, h);
	if (rc == -ENOENT)
		xd_err("no host %u", id);
	else if (rc)
		xd_err("cannot read host %u: %s", id, strerror(-rc));
	return rc;
}

int xd_host_add(struct xd_maps *m, uint32_t id, uint32_t lan_be, uint32_t gidx)
{
	struct xdnat_host h = { .lan_addr = lan_be, .gaddr_index = gidx, .flags = XDNAT_HOST_F_VALID };
	struct xdnat_host_stats *zero_stats;
	char a[INET_ADDRSTRLEN];
	uint32_t other;
	int rc = check_id(m, id);

	if (rc)
		return rc;
	if (gidx >= m->cfg.n_gaddrs) {
		xd_err("global address index %u out of range", gidx);
		return -ERANGE;
	}
	if (lan_be == 0 || lan_be == 0xffffffffu || lan_be == m->cfg.lan_addr) {
		xd_err("%s cannot be a host's LAN address", xd_ipstr(lan_be, a));
		return -EINVAL;
	}
	if (xd_gaddr_index(m, lan_be) >= 0) {
		xd_err("%s is a global address, not a LAN address", xd_ipstr(lan_be, a));
		return -EINVAL;
	}
	if (xd_host_get(m, id, &(struct xdnat_host){0}) == 0) {
		xd_err("host %u exists already (delete it first)", id);
		return -EEXIST;
	}
	if (bpf_map_lookup_elem(m->lan_idx, &lan_be, &other) == 0) {
		xd_err("LAN address %s belongs to host %u already", xd_ipstr(lan_be, a), other);
		return -EEXIST;
	}
	/* Fresh counters for a fresh host. */
	zero_stats = calloc(m->ncpus, sizeof(*zero_stats));
	if (!zero_stats)
		return -ENOMEM;
	rc = bpf_map_update_elem(m->hstats, &id, zero_stats, BPF_ANY);
	free(zero_stats);
	if (rc) {
		rc = -errno;
		xd_err("cannot reset counters of host %u: %s", id, strerror(-rc));
		return rc;
	}
	/* Host entry first, then the LAN index that makes it reachable. */
	if (bpf_map_update_elem(m->hosts, &id, &h, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot write host %u: %s", id, strerror(-rc));
		return rc;
	}
	if (bpf_map_update_elem(m->lan_idx, &lan_be, &id, BPF_NOEXIST)) {
		rc = -errno;
		xd_err("cannot index LAN address %s: %s%s", xd_ipstr(lan_be, a), strerror(-rc),
		       rc == -E2BIG ? " (LAN index full: raise --max-hosts)" : "");
		h.flags = 0;
		if (bpf_map_update_elem(m->hosts, &id, &h, BPF_ANY))
			xd_err("cannot roll back host %u: %s", id, strerror(errno));
		return rc;
	}
	return 0;
}

/* Clear every slot of @v owned by @id; returns the number cleared. */
static uint32_t clear_owner(struct owner_view *v, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < v->n; i++) {
		if (v->slots[i].host_id == id) {
			__atomic_store_n(&v->slots[i].host_id, XDNAT_HOST_NONE, __ATOMIC_RELAXED);
			n++;
		}
	}
	return n;
}

int xd_host_del(struct xd_maps *m, uint32_t id)
{
	struct owner_view pv = {}, sv = {};
	struct xdnat_host h;
	int rc = xd_need_host(m, id, &h);

	if (rc)
		return rc;
	if ((rc = xd_view_map(m->ports, &pv)) || (rc = xd_view_map(m->spis, &sv)))
		goto out;
	/* Blocks first, so no packet is steered to a host being removed. */
	clear_owner(&pv, id);
	clear_owner(&sv, id);
	if (bpf_map_delete_elem(m->lan_idx, &h.lan_addr) && errno != ENOENT) {
		rc = -errno;
		xd_err("cannot remove LAN index of host %u: %s", id, strerror(-rc));
		goto out;
	}
	memset(&h, 0, sizeof(h));
	if (bpf_map_update_elem(m->hosts, &id, &h, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot remove host %u: %s", id, strerror(-rc));
	}
	/* Home again before the id goes: its next owner starts on the LAN. */
	if (m->coa >= 0 && xd_coa_clear(m, id))
		xd_warn("host %u removed with its care-of endpoint left in place", id);
	/* xdnat_host_nh is not cleared: its per-CPU entries hold for the LAN
	 * address they were learnt for only, and a write here could race
	 * with the datapath reading them (maps/xdnat_abi.h). */
out:
	xd_unview(&pv);
	xd_unview(&sv);
	return rc;
}

/* Claim [first,last] of @v for @id after checking every slot is free.
 * Check then write: atomic because there is one writer (see the top). */
static int claim(struct owner_view *v, uint32_t id, uint32_t first, uint32_t last,
		 const char *what, uint32_t shown_first, uint32_t shown_mult)
{
	for (uint32_t i = first; i <= last; i++) {
		uint32_t owner = v->slots[i].host_id;

		if (owner != XDNAT_HOST_NONE) {
			xd_err("%s %u is assigned to host %u already%s", what,
			       shown_first + (i - first) * shown_mult, owner,
			       owner == id ? "" : ": blocks of different hosts must not overlap");
			return -EEXIST;
		}
		if (i == last)
			break;
	}
	for (uint32_t i = first;; i++) {
		__atomic_store_n(&v->slots[i].host_id, id, __ATOMIC_RELAXED);
		if (i == last)
			break;
	}
	return 0;
}

static int release(struct owner_view *v, uint32_t id, uint32_t first, uint32_t last,
		   const char *what, uint32_t shown_first, uint32_t shown_mult)
{
	for (uint32_t i = first;; i++) {
		if (v->slots[i].host_id != id) {
			xd_err("%s %u is not host %u's", what, shown_first + (i - first) * shown_mult, id);
			return -EPERM;
		}
		if (i == last)
			break;
	}
	for (uint32_t i = first;; i++) {
		__atomic_store_n(&v->slots[i].host_id, XDNAT_HOST_NONE, __ATOMIC_RELAXED);
		if (i == last)
			break;
	}
	return 0;
}

int xd_ports_add(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	struct xdnat_host h;
	uint32_t base;
	int rc = xd_need_host(m, id, &h);

	if (rc)
		return rc;
	if (first > last || last > 65535) {
		xd_err("invalid port range %u-%u", first, last);
		return -EINVAL;
	}
	if (first == 0) {
		xd_err("port 0 cannot be assigned");
		return -EINVAL;
	}
	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	base = h.gaddr_index * XDNAT_PORTS_PER_GADDR;
	if (base + last >= v.n) {
		xd_err("port map too small for global address %u", h.gaddr_index);
		rc = -ERANGE;
	} else {
		rc = claim(&v, id, base + first, base + last, "port", first, 1);
	}
	xd_unview(&v);
	return rc;
}

int xd_ports_del(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	struct xdnat_host h;
	uint32_t base;
	int rc = xd_need_host(m, id, &h);

	if (rc)
		return rc;
	if (first > last || last > 65535) {
		xd_err("invalid port range %u-%u", first, last);
		return -EINVAL;
	}
	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	base = h.gaddr_index * XDNAT_PORTS_PER_GADDR;
	rc = base + last < v.n ? release(&v, id, base + first, base + last, "port", first, 1) : -ERANGE;
	xd_unview(&v);
	return rc;
}

/* SPI ranges must cover whole blocks: first aligned, last ends a block. */
static int spi_blocks(struct xd_maps *m, uint32_t first, uint32_t last, uint32_t *b0, uint32_t *b1)
{
	uint32_t bits = m->cfg.spi_block_bits;
	uint32_t mask = (1u << bits) - 1;

	if (first > last || (first & mask) || (last & mask) != mask) {
		xd_err("SPI range 0x%x-0x%x is not made of whole blocks of 2^%u SPIs "
		       "(start at a multiple of 0x%x, end one below a multiple)",
		       first, last, bits, mask + 1);
		return -EINVAL;
	}
	if (first <= XDNAT_SPI_RESERVED_MAX) {
		xd_err("SPI block 0x%x-0x%x contains the reserved SPIs 0-255 (RFC 4303)",
		       first, first | mask);
		return -EINVAL;
	}
	*b0 = first >> bits;
	*b1 = last >> bits;
	return 0;
}

int xd_spis_add(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	struct xdnat_host h;
	uint32_t b0, b1;
	int rc = xd_need_host(m, id, &h);

	if (rc || (rc = spi_blocks(m, first, last, &b0, &b1)))
		return rc;
	if ((rc = xd_view_map(m->spis, &v)))
		return rc;
	rc = b1 < v.n ? claim(&v, id, b0, b1, "SPI block starting at", first,
			      1u << m->cfg.spi_block_bits) : -ERANGE;
	xd_unview(&v);
	return rc;
}

int xd_spis_del(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	struct xdnat_host h;
	uint32_t b0, b1;
	int rc = xd_need_host(m, id, &h);

	if (rc || (rc = spi_blocks(m, first, last, &b0, &b1)))
		return rc;
	if ((rc = xd_view_map(m->spis, &v)))
		return rc;
	rc = b1 < v.n ? release(&v, id, b0, b1, "SPI block starting at", first,
				1u << m->cfg.spi_block_bits) : -ERANGE;
	xd_unview(&v);
	return rc;
}

/* Collect runs of consecutive slots in [from, to) owned by @id. */
static int runs_of(const struct owner_view *v, uint32_t id, uint32_t from, uint32_t to,
		   uint32_t sub, uint32_t shift, uint32_t tail, struct xd_run **out, size_t *n)
{
	struct xd_run *runs = NULL;
	size_t cnt = 0, cap = 0;

	for (uint32_t i = from; i < to; i++) {
		uint32_t j;

		if (v->slots[i].host_id != id)
			continue;
		for (j = i; j + 1 < to && v->slots[j + 1].host_id == id; j++)
			;
		if (cnt == cap) {
			struct xd_run *nr;

			cap = cap ? cap * 2 : 8;
			nr = realloc(runs, cap * sizeof(*runs));
			if (!nr) {
				free(runs);
				return -ENOMEM;
			}
			runs = nr;
		}
		runs[cnt].first = ((i - sub) << shift);
		runs[cnt].last = ((j - sub) << shift) | tail;
		cnt++;
		i = j;
	}
	*out = runs;
	*n = cnt;
	return 0;
}

int xd_ports_of(struct xd_maps *m, uint32_t id, struct xd_run **runs, size_t *n)
{
	struct owner_view v = {};
	struct xdnat_host h;
	uint32_t base;
	int rc = xd_host_get(m, id, &h);

	if (rc)
		return rc;
	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	base = h.gaddr_index * XDNAT_PORTS_PER_GADDR;
	rc = base + XDNAT_PORTS_PER_GADDR <= v.n ?
		runs_of(&v, id, base, base + XDNAT_PORTS_PER_GADDR, base, 0, 0, runs, n) : -ERANGE;
	xd_unview(&v);
	return rc;
}

int xd_spis_of(struct xd_maps *m, uint32_t id, struct xd_run **runs, size_t *n)
{
	struct owner_view v = {};
	uint32_t bits = m->cfg.spi_block_bits;
	int rc;

	if ((rc = xd_view_map(m->spis, &v)))
		return rc;
	rc = runs_of(&v, id, 0, v.n, 0, bits, (1u << bits) - 1, runs, n);
	xd_unview(&v);
	return rc;
}

static int percpu_sum(int fd, uint32_t key, int ncpus, size_t words, uint64_t *sum)
{
	/* Per-CPU values come back 8-byte aligned, one per possible CPU. */
	uint64_t *vals = calloc((size_t)ncpus * words, sizeof(uint64_t));
	int rc = 0;

	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		rc = -errno;
	} else {
		memset(sum, 0, words * sizeof(*sum));
		for (int c = 0; c < ncpus; c++)
			for (size_t w = 0; w < words; w++)
				sum[w] += vals[(size_t)c * words + w];
	}
	free(vals);
	return rc;
}

int xd_host_stats(struct xd_maps *m, uint32_t id, struct xdnat_host_stats *out)
{
	uint64_t w[4];
	int rc = percpu_sum(m->hstats, id, m->ncpus, 4, w);

	if (rc)
		return rc;
	out->to_host_packets = w[0];
	out->to_host_bytes = w[1];
	out->from_host_packets = w[2];
	out->from_host_bytes = w[3];
	return 0;
}

int xd_reason_stats(struct xd_maps *m, uint32_t reason, struct xdnat_counter *out)
{
	uint64_t w[2];
	int rc = percpu_sum(m->stats, reason, m->ncpus, 2, w);

	if (rc)
		return rc;
	out->packets = w[0];
	out->bytes = w[1];
	return 0;
}

/* First slot of [from,to] owned by anyone, as an index, or -1. */
static int64_t first_owned(const struct owner_view *v, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i <= to && i < v->n; i++) {
		if (v->slots[i].host_id != XDNAT_HOST_NONE)
			return i;
		if (i == to)
			break;
	}
	return -1;
}

int64_t xd_ports_first_owned(struct xd_maps *m, uint32_t gidx, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	uint32_t base = gidx * XDNAT_PORTS_PER_GADDR;
	int64_t r;

	if (first > last || last > 65535 || xd_view_map(m->ports, &v))
		return first; /* cannot tell: treat as taken */
	r = first_owned(&v, base + first, base + last);
	xd_unview(&v);
	return r < 0 ? -1 : r - base;
}

int64_t xd_spis_first_owned(struct xd_maps *m, uint32_t first, uint32_t last)
{
	struct owner_view v = {};
	uint32_t bits = m->cfg.spi_block_bits;
	int64_t r;

	if (first > last || xd_view_map(m->spis, &v))
		return first;
	r = first_owned(&v, first >> bits, last >> bits);
	xd_unview(&v);
	return r < 0 ? -1 : (int64_t)((uint64_t)r << bits);
}
