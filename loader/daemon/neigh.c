// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Neighbour entries for the hosts' LAN addresses over rtnetlink (neigh.h
 * has the rules).  Each pass reads the interface's IPv4 neighbour table
 * with one RTM_GETNEIGH dump and changes only what the rules ask for, one
 * acknowledged request per change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include "neigh.h"
#include "xdnat.h"

#ifndef NTF_EXT_MANAGED
#define NTF_EXT_MANAGED (1 << 0)
#endif

/* One entry of the table as the kernel reported it. */
struct nent {
	uint32_t addr;          /* network order */
	uint16_t state;         /* NUD_* */
	uint8_t proto;          /* NDA_PROTOCOL, 0 if none */
	bool managed;           /* NTF_EXT_MANAGED */
};

struct xd_neigh {
	struct mnl_socket *nl;
	unsigned portid, seq;
	int ifindex;
	struct nent *tab;
	size_t n, cap;
	uint32_t *want;         /* sorted copy of the last request */
	size_t wcap;
	struct xd_neigh_stats st;
	bool no_managed;        /* the kernel refused NTF_EXT_MANAGED: plain entries */
	time_t warned;          /* last failure warning (one a minute at most) */
	char buf[32768];        /* one recv: the kernel sizes dump parts to it */
};

static bool operators(const struct nent *e)
{
	return e->state & (NUD_PERMANENT | NUD_NOARP);
}

static bool ours(const struct nent *e)
{
	return e->proto == XD_NEIGH_PROTO && !operators(e);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = ntohl(*(const uint32_t *)a), y = ntohl(*(const uint32_t *)b);

	return x < y ? -1 : x > y;
}

static int cmp_nent(const void *a, const void *b)
{
	return cmp_u32(&((const struct nent *)a)->addr, &((const struct nent *)b)->addr);
}

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, NDA_MAX) > 0)
		tb[type] = a;
	return MNL_CB_OK;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct xd_neigh *k = data;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = { 0 };
	struct nent e = { 0 };

	if (nlh->nlmsg_type != RTM_NEWNEIGH || ndm->ndm_family != AF_INET ||
	    ndm->ndm_ifindex != k->ifindex || (ndm->ndm_flags & NTF_PROXY))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ndm), attr_cb, tb) < 0)
		return MNL_CB_ERROR;
	if (!tb[NDA_DST] || mnl_attr_get_payload_len(tb[NDA_DST]) != 4)
		return MNL_CB_OK;
	memcpy(&e.addr, mnl_attr_get_payload(tb[NDA_DST]), 4);
	e.state = ndm->ndm_state;
	if (tb[NDA_PROTOCOL] && mnl_attr_get_payload_len(tb[NDA_PROTOCOL]) >= 1)
		e.proto = mnl_attr_get_u8(tb[NDA_PROTOCOL]);
	if (tb[NDA_FLAGS_EXT] && mnl_attr_get_payload_len(tb[NDA_FLAGS_EXT]) >= 4)
		e.managed = mnl_attr_get_u32(tb[NDA_FLAGS_EXT]) & NTF_EXT_MANAGED;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct nent *t = realloc(k->tab, cap * sizeof(*t));

		if (!t)
			return MNL_CB_ERROR;
		k->tab = t;
		k->cap = cap;
	}
	k->tab[k->n++] = e;
	return MNL_CB_OK;
}

/* Send @nlh and run the answers through @cb until the kernel's last one;
 * 0 or -errno (an error acknowledgement gives its errno). */
static int talk(struct xd_neigh *k, struct nlmsghdr *nlh, mnl_cb_t cb)
{
	ssize_t len;
	int rc;

	nlh->nlmsg_seq = ++k->seq;
	if (mnl_socket_sendto(k->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = mnl_socket_recvfrom(k->nl, k->buf, sizeof(k->buf));
		if (len < 0)
			return -errno;
		rc = mnl_cb_run(k->buf, (size_t)len, k->seq, k->portid, cb, k);
	} while (rc > MNL_CB_STOP);
	return rc < 0 ? -(errno ? errno : EIO) : 0;
}

static int nl_open(struct xd_neigh *k)
{
	int one = 1;

	k->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!k->nl)
		return -errno;
	if (mnl_socket_bind(k->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(k->nl);
		k->nl = NULL;
		return -e;
	}
	/* Extended acks carry the kernel's reason (older kernels ignore it). */
	(void)mnl_socket_setsockopt(k->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	k->portid = mnl_socket_get_portid(k->nl);
	return 0;
}

/* The interface's IPv4 neighbours into k->tab, sorted by address. */
static int read_table(struct xd_neigh *k)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	int rc = -EINTR;

	/* A dump that the kernel marks interrupted (the table changed while
	 * it was read) is read again.  A dump abandoned half way leaves
	 * messages in the socket: a new socket starts clean. */
	for (int tries = 0; tries < 3 && rc == -EINTR; tries++) {
		if (tries || !k->nl) {
			if (k->nl)
				mnl_socket_close(k->nl);
			k->nl = NULL;
			if ((rc = nl_open(k)))
				return rc;
		}
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
		struct ndmsg *ndm;

		nlh->nlmsg_type = RTM_GETNEIGH;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
		ndm->ndm_family = AF_INET;
		ndm->ndm_ifindex = k->ifindex;
		k->n = 0;
		errno = 0;
		rc = talk(k, nlh, dump_cb);
	}
	if (rc) {
		mnl_socket_close(k->nl);
		k->nl = NULL;   /* reopened by the next pass */
		return rc;
	}
	if (k->n)  /* qsort(NULL, 0, ...) is undefined */
		qsort(k->tab, k->n, sizeof(*k->tab), cmp_nent);
	return 0;
}

/* RTM_NEWNEIGH/RTM_DELNEIGH for @addr with NLM_F_ACK; @ext: NDA_FLAGS_EXT
 * (0: none). */
static int change(struct xd_neigh *k, uint16_t type, uint16_t flags, uint32_t addr, uint8_t ndm_flags,
		  uint32_t ext)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ndmsg *ndm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = k->ifindex;
	ndm->ndm_state = NUD_NONE;
	ndm->ndm_flags = ndm_flags;
	mnl_attr_put(nlh, NDA_DST, 4, &addr);
	if (type == RTM_NEWNEIGH)
		mnl_attr_put_u8(nlh, NDA_PROTOCOL, XD_NEIGH_PROTO);
	if (ext)
		mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, ext);
	errno = 0;
	return talk(k, nlh, NULL);
}

/* A missing entry: create it, never replacing one made meanwhile. */
static int create(struct xd_neigh *k, uint32_t addr)
{
	int rc = -EINVAL;

	if (!k->no_managed) {
		rc = change(k, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, addr, 0, NTF_EXT_MANAGED);
		if (rc == -EINVAL || rc == -EOPNOTSUPP) {
			k->no_managed = true;
			xd_warn("the kernel refuses managed neighbour entries (kernel < 5.16?): "
				"xdnatd refreshes its own entries when they go stale");
		}
	}
	/* Without managed entries: resolve it now (NTF_USE, as a packet
	 * would); xdnatd refreshes it when it goes stale (sync). */
	if (k->no_managed)
		rc = change(k, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, addr, NTF_USE, 0);
	return rc;
}

struct xd_neigh *xd_neigh_open(int ifindex)
{
	struct xd_neigh *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return NULL;
	k->ifindex = ifindex;
	k->seq = (unsigned)time(NULL);
	if ((rc = nl_open(k))) {
		free(k);
		errno = -rc;
		return NULL;
	}
	return k;
}

static const struct nent *find(const struct xd_neigh *k, uint32_t addr)
{
	struct nent key = { .addr = addr };

	/* bsearch(NULL, 0, ...) is undefined too */
	return k->n ? bsearch(&key, k->tab, k->n, sizeof(*k->tab), cmp_nent) : NULL;
}

static bool wanted(const struct xd_neigh *k, size_t nw, uint32_t addr)
{
	return nw && bsearch(&addr, k->want, nw, sizeof(*k->want), cmp_u32) != NULL;
}

static void failed(struct xd_neigh *k, const char *what, uint32_t addr, int rc)
{
	char a[INET_ADDRSTRLEN];
	time_t now = time(NULL);

	k->st.failed++;
	if (now - k->warned < 60 && !xd_verbose)
		return;
	k->warned = now;
	xd_warn("cannot %s the neighbour entry for %s: %s (the first packets to that host go "
		"through the stack; retried every pass, warnings once a minute)", what,
		xd_ipstr(addr, a), strerror(-rc));
}

int xd_neigh_sync(struct xd_neigh *k, const uint32_t *want, size_t n)
{
	char a[INET_ADDRSTRLEN];
	size_t nw = 0;
	int rc;

	if (n > k->wcap) {
		uint32_t *w = realloc(k->want, n * sizeof(*w));

		if (!w)
			return -ENOMEM;
		k->want = w;
		k->wcap = n;
	}
	for (size_t i = 0; i < n; i++)
		if (want[i])
			k->want[nw++] = want[i];
	if (nw)
		qsort(k->want, nw, sizeof(*k->want), cmp_u32);
	{   /* unique */
		size_t u = 0;

		for (size_t i = 0; i < nw; i++)
			if (!u || k->want[u - 1] != k->want[i])
				k->want[u++] = k->want[i];
		nw = u;
	}
	if ((rc = read_table(k)))
		return rc;
	memset(&k->st, 0, sizeof(k->st));
	k->st.wanted = (unsigned)nw;
	/* Ours that no host needs any more. */
	for (size_t i = 0; i < k->n; i++) {
		const struct nent *e = &k->tab[i];

		if (!ours(e) || wanted(k, nw, e->addr))
			continue;
		rc = change(k, RTM_DELNEIGH, 0, e->addr, 0, 0);
		if (rc && rc != -ENOENT) {
			failed(k, "remove", e->addr, rc);
			continue;
		}
		k->st.deleted++;
		xd_info("neighbour %s: removed (no host has that address any more)", xd_ipstr(e->addr, a));
	}
	for (size_t i = 0; i < nw; i++) {
		const struct nent *e = find(k, k->want[i]);

		if (!e) {
			/* EEXIST: made meanwhile (the host's ARP, the operator):
			 * theirs, and seen as such by the next pass. */
			if ((rc = create(k, k->want[i])) == -EEXIST) {
				k->st.other++;
				continue;
			}
			if (rc) {
				failed(k, "create", k->want[i], rc);
				continue;
			}
			k->st.created++;
			xd_info("neighbour %s: created (%s)", xd_ipstr(k->want[i], a),
				k->no_managed ? "resolving" : "managed");
		} else if (operators(e)) {
			k->st.operator_++;
		} else if (!ours(e)) {
			k->st.other++;
		} else {
			k->st.ours++;
			/* Managed: the kernel keeps it resolved.  Else refresh it
			 * as a packet would (never an entry of someone else:
			 * NTF_USE would turn a permanent one into a dynamic one). */
			if (e->managed || !(e->state == NUD_NONE || (e->state & (NUD_STALE | NUD_FAILED))))
				continue;
			rc = change(k, RTM_NEWNEIGH, 0, e->addr, NTF_USE, 0);
			if (rc && rc != -ENOENT)
				failed(k, "refresh", e->addr, rc);
			else if (!rc)
				k->st.refreshed++;
		}
	}
	return 0;
}

const struct xd_neigh_stats *xd_neigh_last(const struct xd_neigh *k)
{
	return &k->st;
}

int xd_neigh_remove_ours(struct xd_neigh *k)
{
	return xd_neigh_sync(k, NULL, 0);
}

void xd_neigh_close(struct xd_neigh *k)
{
	if (!k)
		return;
	if (k->nl)
		mnl_socket_close(k->nl);
	free(k->tab);
	free(k->want);
	free(k);
}
