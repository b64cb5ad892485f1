// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The one writer of an instance's maps and store (writer.h): the operator's
 * changes, parsed once, applied in one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "writer.h"
#include "rsip_server.h"
#include "store.h"

/* A parsed change.  Ranges of "host add" are kept as words and parsed
 * again when applied (they were checked when parsed). */
struct change {
	enum { C_HOST_ADD, C_HOST_DEL, C_PORTS_ADD, C_PORTS_DEL, C_SPI_ADD, C_SPI_DEL,
	       C_IKE_DEFAULT, C_ENROLL, C_UNENROLL } op;
	uint32_t id, lan, first, last, port;
	uint32_t global;            /* network order; 0: the first global address */
	bool have_lan;
	const char *name;
	int nextra;                 /* host add: words after ID */
	char *const *extra;
};

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static int parse_id(const char *s, uint32_t *id, char *err, size_t errlen)
{
	if (xd_parse_u32(s, 1, XDNAT_LIMIT_MAX_HOSTS, id))
		return FAIL("'%s' is not a host id", s ? s : "");
	return 0;
}

static int parse_range(bool ports, const char *s, uint32_t *a, uint32_t *b, char *err, size_t errlen)
{
	if (ports && xd_parse_range(s, 1, 65535, a, b))
		return FAIL("'%s' is not a port range A-B within 1-65535", s);
	if (!ports && xd_parse_range(s, 0, 0xffffffffu, a, b))
		return FAIL("'%s' is not an SPI range A-B", s);
	return 0;
}

static int parse_addr(const char *s, uint32_t *a, char *err, size_t errlen)
{
	if (xd_parse_ipv4(s, a))
		return FAIL("'%s' is not an IPv4 address", s);
	return 0;
}

/* host add ID lan ADDR [global ADDR] [ports A-B]... [spi A-B]... */
static int parse_host_add(int argc, char *const *argv, struct change *c, char *err, size_t errlen)
{
	uint32_t a, b;
	int rc;

	if (argc < 1)
		return FAIL("host add: missing ID");
	if ((rc = parse_id(argv[0], &c->id, err, errlen)))
		return rc;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return FAIL("host add: '%s' needs a value", argv[i]);
		if (!strcmp(argv[i], "lan")) {
			rc = parse_addr(argv[i + 1], &c->lan, err, errlen);
			c->have_lan = true;
		} else if (!strcmp(argv[i], "global")) {
			rc = parse_addr(argv[i + 1], &c->global, err, errlen);
		} else if (!strcmp(argv[i], "ports") || !strcmp(argv[i], "spi")) {
			rc = parse_range(argv[i][0] == 'p', argv[i + 1], &a, &b, err, errlen);
		} else {
			return FAIL("host add: unknown keyword '%s'", argv[i]);
		}
		if (rc)
			return rc;
	}
	if (!c->have_lan)
		return FAIL("host add: 'lan ADDR' is required");
	c->op = C_HOST_ADD;
	c->nextra = argc - 1;
	c->extra = argv + 1;
	return 0;
}

/* ike default PORT HOST|none [global ADDR] */
static int parse_ike(int argc, char *const *argv, struct change *c, char *err, size_t errlen)
{
	int rc;

	if (argc != 4 && argc != 6)
		return FAIL("ike default: expected PORT HOST|none [global ADDR]");
	if (xd_parse_u32(argv[2], 1, 65535, &c->port))
		return FAIL("'%s' is not a port", argv[2]);
	if (strcmp(argv[3], "none") && (rc = parse_id(argv[3], &c->id, err, errlen)))
		return rc;
	if (argc == 6 && strcmp(argv[4], "global"))
		return FAIL("ike default: unexpected '%s'", argv[4]);
	if (argc == 6 && (rc = parse_addr(argv[5], &c->global, err, errlen)))
		return rc;
	c->op = C_IKE_DEFAULT;
	return 0;
}

/* enroll NAME [lan ADDR] | unenroll NAME.  (xdnatctl's "secret-file PATH"
 * stays on its side: the secret comes back in the response.) */
static int parse_enroll(int argc, char *const *argv, struct change *c, char *err, size_t errlen)
{
	int rc;

	if (!strcmp(argv[0], "unenroll")) {
		if (argc != 2)
			return FAIL("unenroll: expected NAME");
		c->op = C_UNENROLL;
		c->name = argv[1];
		return 0;
	}
	if (argc != 2 && argc != 4)
		return FAIL("enroll: expected NAME [lan ADDR]");
	if (argc == 4 && strcmp(argv[2], "lan"))
		return FAIL("enroll: unknown argument '%s'", argv[2]);
	if (argc == 4 && (rc = parse_addr(argv[3], &c->lan, err, errlen)))
		return rc;
	c->op = C_ENROLL;
	c->name = argv[1];
	return 0;
}

static int parse(int argc, char *const *argv, struct change *c, char *err, size_t errlen)
{
	bool ports;
	int rc;

	memset(c, 0, sizeof(*c));
	if (argc < 1)
		return FAIL("empty command");
	if (!strcmp(argv[0], "enroll") || !strcmp(argv[0], "unenroll"))
		return parse_enroll(argc, argv, c, err, errlen);
	if (!strcmp(argv[0], "ike") && argc > 1 && !strcmp(argv[1], "default"))
		return parse_ike(argc, argv, c, err, errlen);
	if (argc < 2)
		return FAIL("%s: expected a command", argv[0]);
	if (!strcmp(argv[0], "host") && !strcmp(argv[1], "add"))
		return parse_host_add(argc - 2, argv + 2, c, err, errlen);
	if (!strcmp(argv[0], "host") && !strcmp(argv[1], "del")) {
		if (argc != 3)
			return FAIL("host del: expected ID");
		c->op = C_HOST_DEL;
		return parse_id(argv[2], &c->id, err, errlen);
	}
	ports = !strcmp(argv[0], "ports");
	if (!ports && strcmp(argv[0], "spi"))
		return FAIL("'%s %s' is not a change", argv[0], argv[1]);
	if (argc != 4)
		return FAIL("%s: expected 'add|del ID A-B'", argv[0]);
	if (strcmp(argv[1], "add") && strcmp(argv[1], "del"))
		return FAIL("unknown command '%s'", argv[1]);
	if ((rc = parse_id(argv[2], &c->id, err, errlen)) ||
	    (rc = parse_range(ports, argv[3], &c->first, &c->last, err, errlen)))
		return rc;
	c->op = ports ? (argv[1][0] == 'a' ? C_PORTS_ADD : C_PORTS_DEL)
		      : (argv[1][0] == 'a' ? C_SPI_ADD : C_SPI_DEL);
	return 0;
}

int xd_change_kind(int argc, char *const *argv)
{
	const char *o = argc > 0 ? argv[0] : "", *c = argc > 1 ? argv[1] : "";

	if (!strcmp(o, "enroll") || !strcmp(o, "unenroll"))
		return XD_CHANGE_STORE;
	if ((!strcmp(o, "host") && (!strcmp(c, "add") || !strcmp(c, "del"))) ||
	    ((!strcmp(o, "ports") || !strcmp(o, "spi")) && (!strcmp(c, "add") || !strcmp(c, "del"))) ||
	    (!strcmp(o, "ike") && !strcmp(c, "default")))
		return XD_CHANGE_MAPS;
	return XD_CHANGE_NONE;
}

int xd_change_check(int argc, char *const *argv, char *err, size_t errlen)
{
	struct change c;

	return parse(argc, argv, &c, err, errlen);
}

/* ------------------------------------------------------------- applying */

struct xd_store *xd_writer_db(struct xd_writer *w, char *err, size_t errlen)
{
	if (w->rsip && w->rsip->st)
		return w->rsip->st;
	if (!w->db && xd_store_open(w->state_dir ? w->state_dir : XDNAT_STATE_DIR, w->instance, 0, &w->db,
				    err, errlen))
		w->db = NULL;
	return w->db;
}

void xd_writer_close(struct xd_writer *w)
{
	xd_store_close(w->db);
	w->db = NULL;
}

static int gidx_of(struct xd_writer *w, uint32_t global, uint32_t *gidx, char *err, size_t errlen)
{
	char a[INET_ADDRSTRLEN];
	int gi;

	if (!global) {
		*gidx = 0;
		return 0;
	}
	gi = xd_gaddr_index(w->maps, global);
	if (gi < 0) {
		snprintf(err, errlen, "%s is not one of this router's global addresses",
			 xd_ipstr(global, a));
		return -ENOENT;
	}
	*gidx = (uint32_t)gi;
	return 0;
}

/* Host ids the store gives registered RSIP hosts are the RSIP server's:
 * an operator change to one would leave the store and the maps apart. */
static int rsip_owned(struct xd_writer *w, uint32_t id, char *err, size_t errlen)
{
	int rc;

	if (!w->rsip)
		return 0;
	rc = rsip_server_host_in_use(w->rsip, id);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the state database");
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "host %u is an RSIP host (xdnatctl rsip list): its blocks change "
			 "over RSIP, or with 'xdnatctl rsip evict' / 'unenroll'", id);
		return -EBUSY;
	}
	return 0;
}

/* All or nothing: the host, then its blocks; a refused block removes it. */
static int host_add(struct xd_writer *w, const struct change *c, char *err, size_t errlen)
{
	uint32_t gidx, a, b;
	int rc;

	if ((rc = gidx_of(w, c->global, &gidx, err, errlen)) || (rc = rsip_owned(w, c->id, err, errlen)))
		return rc;
	if ((rc = xd_host_add(w->maps, c->id, c->lan, gidx)))
		return rc;
	for (int i = 0; i + 1 < c->nextra; i += 2) {
		bool ports = !strcmp(c->extra[i], "ports");

		if (!ports && strcmp(c->extra[i], "spi"))
			continue;
		if (parse_range(ports, c->extra[i + 1], &a, &b, err, errlen))
			rc = -EINVAL;
		else
			rc = ports ? xd_ports_add(w->maps, c->id, a, b) : xd_spis_add(w->maps, c->id, a, b);
		if (rc) {
			if (xd_host_del(w->maps, c->id))
				xd_err("could not roll back host %u", c->id);
			return rc;
		}
	}
	return 0;
}

static int apply_maps(struct xd_writer *w, const struct change *c, char *err, size_t errlen)
{
	uint32_t gidx;
	int rc;

	if (!w->maps) {
		snprintf(err, errlen, "no pinned maps of instance '%s'", w->instance);
		return -ENOENT;
	}
	switch (c->op) {
	case C_HOST_ADD:
		return host_add(w, c, err, errlen);
	case C_IKE_DEFAULT:
		if ((rc = gidx_of(w, c->global, &gidx, err, errlen)))
			return rc;
		return xd_shared_default(w->maps, gidx, (uint16_t)c->port, c->id);
	default:
		break;
	}
	if ((rc = rsip_owned(w, c->id, err, errlen)))
		return rc;
	switch (c->op) {
	case C_HOST_DEL: return xd_host_del(w->maps, c->id);
	case C_PORTS_ADD: return xd_ports_add(w->maps, c->id, c->first, c->last);
	case C_PORTS_DEL: return xd_ports_del(w->maps, c->id, c->first, c->last);
	case C_SPI_ADD: return xd_spis_add(w->maps, c->id, c->first, c->last);
	case C_SPI_DEL: return xd_spis_del(w->maps, c->id, c->first, c->last);
	default: return -EINVAL;
	}
}

/* enroll: the new secret is the response ({"name":..,"secret":..}). */
static int apply_store(struct xd_writer *w, const struct change *c, bool text, FILE *out,
		       char *err, size_t errlen)
{
	uint8_t secret[RSIP_SECRET_LEN];
	char hex[2 * RSIP_SECRET_LEN + 1];
	struct xd_store *db = xd_writer_db(w, err, errlen);
	struct xd_json j;
	int rc;

	if (!db)
		return -EIO;
	rc = c->op == C_UNENROLL ? db->ops->unenroll(db, c->name)
				 : xd_store_enroll_new(db, c->name, c->lan, secret);
	if (rc) {
		snprintf(err, errlen, "%s", xd_store_error(db));
		return rc;
	}
	if (c->op == C_UNENROLL)
		return 0;
	rsip_secret_hex(secret, hex);
	if (text) {
		fprintf(out, "%s\n", hex);
	} else {
		xd_json_begin(&j, out);
		xd_json_str(&j, "name", c->name);
		xd_json_str(&j, "secret", hex);
		xd_json_end(&j);
	}
	memset(hex, 0, sizeof(hex));
	memset(secret, 0, sizeof(secret));
	return 0;
}

int xd_writer_apply(struct xd_writer *w, int argc, char *const *argv, bool text, FILE *out,
		    char *err, size_t errlen)
{
	struct change c;
	char cap[320];
	int rc;

	err[0] = '\0';
	if ((rc = parse(argc, argv, &c, err, errlen)))
		return rc;
	/* The layers below report with xd_err(): collect it for the caller. */
	xd_err_capture(cap, sizeof(cap));
	if (c.op == C_ENROLL || c.op == C_UNENROLL)
		rc = apply_store(w, &c, text, out, err, errlen);
	else
		rc = apply_maps(w, &c, err, errlen);
	xd_err_capture(NULL, 0);
	if (rc && !err[0])
		snprintf(err, errlen, "%s", cap[0] ? cap : strerror(-rc));
	return rc;
}

/* ------------------------------------------------------------------ lock */

bool xd_is_xdnatd(long pid)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	comm[n > 0 ? n : 0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, "xdnatd");
}

int xd_instance_lock(const char *instance, long *holder)
{
	char path[300], buf[32];
	ssize_t n;
	int fd, rc;

	*holder = 0;
	if (!xd_valid_instance(instance))
		return -EINVAL;
	if (mkdir(XD_RUN_DIR, 0755) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), XD_RUN_DIR "/%s.lock", instance);
	/* O_RDWR like xdnatd's: the file exists before either takes it. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = flock(fd, LOCK_EX | LOCK_NB);
	/* The pid xdnatd recorded (its last run's, when we got the lock). */
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	*holder = strtol(buf, NULL, 10);
	if (rc == 0 && *holder > 0 && xd_is_xdnatd(*holder))
		rc = -1;   /* between exec and its lock (reload-programs): it is running */
	if (rc == 0)
		return fd;
	close(fd);
	return -EBUSY;
}
