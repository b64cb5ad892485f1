// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl on the state store: rsip list and cert list|show read it (from
 * the running xdnatd when it answers, else directly); rsip evict and cert
 * revoke are changes, made by xdnatd (or, for a revocation with no xdnatd
 * running, here under the instance lock).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/pem.h>
#include "cli.h"
#include "ctl_sock.h"
#include "lca.h"
#include "rsip_server.h"
#include "store.h"

/* rsip list | rsip evict NAME */
int cli_rsip(int argc, char **argv)
{
	char path[128], err[256];
	struct xd_store *db;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "evict")) {
		if ((rc = cli_via_daemon(argc, argv, NULL)) >= 0)
			return rc;
		/* The quarantine and the RSIP server's index live in xdnatd. */
		ctl_sock_path(cli.instance, path, sizeof(path));
		xd_err("no xdnatd answers on %s: rsip evict needs the running xdnatd "
		       "(start it, or unenroll the host); nothing changed", path);
		return 1;
	}
	if (argc != 2 || strcmp(argv[1], "list"))
		return cli_usage_err("rsip: expected 'list' or 'evict NAME'%s", NULL);
	if (!cli.direct && (rc = cli_via_daemon(argc, argv, NULL)) >= 0)
		return rc;
	if (xd_store_open(cli.state_dir, cli.instance, 0, &db, err, sizeof(err))) {
		xd_err("%s", err);
		return 1;
	}
	rc = rsip_list(db, cli.json, stdout, rsip_now_ms()) ? 1 : 0;
	xd_store_close(db);
	return rc;
}

struct cert_show {
	bool found;
};

static int cb_cert_show(void *arg, const struct lca_record *r)
{
	struct cert_show *c = arg;
	const unsigned char *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);

	c->found = true;
	if (lca_list_print_one(r, cli.json, stdout, (int64_t)(rsip_now_ms() / 1000)))
		return -EIO;
	if (!cli.json && x)
		PEM_write_X509(stdout, x);
	X509_free(x);
	return 0;
}

/* cert list [HOST] | show SERIAL | revoke SERIAL [REASON] */
int cli_cert(int argc, char **argv)
{
	struct lca_err e = { { 0 } };
	struct xd_store *db;
	char err[256];
	int rc = 1, reason = LCA_REASON_UNSPECIFIED, lock = -1;

	if (argc < 2 || (!strcmp(argv[1], "list") && argc > 3) ||
	    (!strcmp(argv[1], "show") && argc != 3) ||
	    (!strcmp(argv[1], "revoke") && (argc < 3 || argc > 4)) ||
	    (strcmp(argv[1], "list") && strcmp(argv[1], "show") && strcmp(argv[1], "revoke")))
		return cli_usage_err("cert: expected 'list [HOST]', 'show SERIAL' or 'revoke SERIAL "
				 "[REASON]'%s", NULL);
	if (!strcmp(argv[1], "revoke") && argc == 4 && lca_reason_parse(argv[3], &reason))
		return cli_usage_err("cert revoke: unknown reason '%s'", argv[3]);
	if (!strcmp(argv[1], "revoke") && !cli.direct && (rc = cli_via_daemon(argc, argv, NULL)) >= 0)
		return rc;
	/* A revocation without xdnatd: under the instance lock. */
	if (!strcmp(argv[1], "revoke") && (lock = cli_offline_lock("changing the state database directly", true)) < 0)
		return 1;
	rc = 1;
	if (xd_store_open(cli.state_dir, cli.instance, 0, &db, err, sizeof(err))) {
		xd_err("%s", err);
		goto out_lock;
	}
	if (db->ops->ca_init(db, &e)) {
		xd_err("%s", e.msg);
		goto out;
	}
	if (!strcmp(argv[1], "list")) {
		rc = db->ops->cert_list_print(db, argc == 3 ? argv[2] : NULL, cli.json, stdout,
					      (int64_t)(rsip_now_ms() / 1000), &e) ? 1 : 0;
	} else if (!strcmp(argv[1], "show")) {
		struct cert_show c = { 0 };
		int r = db->ops->cert_get(db, argv[2], cb_cert_show, &c, &e);

		if (r == -ENOENT || (!r && !c.found))
			xd_err("no certificate with serial %s", argv[2]);
		rc = r || !c.found ? 1 : 0;
	} else {
		rc = db->ops->cert_revoke(db, argv[2], reason, (int64_t)(rsip_now_ms() / 1000), &e);
		if (rc == -EALREADY || rc == -ENOENT || rc)
			xd_err("%s", e.msg);
		else if (cli.json)
			printf("{\"serial\": \"%s\", \"revoked\": true, \"reason\": \"%s\"}\n", argv[2],
			       lca_reason_name(reason));
		else
			printf("revoked %s (%s)\n", argv[2], lca_reason_name(reason));
		rc = rc ? 1 : 0;
	}
	if (rc && e.msg[0] && !strcmp(argv[1], "list"))
		xd_err("%s", e.msg);
out:
	xd_store_close(db);
out_lock:
	if (lock >= 0)
		close(lock);
	return rc;
}
