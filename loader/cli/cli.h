/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnatctl, by command group: views read the pinned maps and the store
 * (cli_show.c, cli_store.c); changes are requests to xdnatd, the one writer
 * (cli_change.c, docs/ARCHITECTURE.md "Who writes what"); cli_daemon.c
 * talks to its control socket.
 */
#ifndef XDNAT_CLI_H
#define XDNAT_CLI_H

#include <stdbool.h>
#include "xdnat.h"

/* Options of the command line (xdnatctl.c). */
struct cli {
	bool json, direct;
	const char *instance, *pin_base, *state_dir;
	const char *config;        /* --config: its [store] section */
};
extern struct cli cli;

int cli_usage_err(const char *fmt, const char *arg);
int cli_parse_id(const char *s, uint32_t *id);

/* cli_show.c: host show|list, stats, config, lookup, ike list on @m. */
bool cli_is_view(int argc, char **argv);
int cli_view(struct xd_maps *m, int argc, char **argv);

/* cli_daemon.c */
#define CLI_TIMEOUT_MS 10000
#define CLI_BUSY_TRIES 500      /* x 20 ms: xdnatd's connections all taken */
/* Run @argv in xdnatd: 0/1 (exit status) when it answered or refused, -1
 * when none listens.  With @text_out, a successful text response is put
 * there (malloc'd) instead of printed. */
int cli_via_daemon(int argc, char **argv, char **text_out);
int cli_print_response(const char *resp, char **text_out);
int cli_daemon(int argc, char **argv);     /* daemon stats|ping */
int cli_reload(void);                      /* reload-programs */

/* cli_change.c: changes (writer.h) and -b. */
int cli_change(int argc, char **argv);
int cli_enroll(int argc, char **argv);
int cli_batch(const char *path);
/* The offline path: the instance lock, or a clear refusal (-1); with
 * @wait, first wait a while for a holder (an xdnatd starting). */
int cli_offline_lock(const char *what, bool wait);

/* cli_store.c: the state store read directly; evict and revoke. */
int cli_rsip(int argc, char **argv);       /* rsip list|evict */
int cli_cert(int argc, char **argv);       /* cert list|show|revoke */

#endif
