/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Delivery of the Local CA's revocation notices (ca/notice.h) to remote
 * peers: UDP from the global address and a fixed, reserved port (so the
 * acknowledgements reach xdnatd, not a host), resent with back-off (1, 2,
 * 4, ... 32 s) until the peer acknowledges; a peer that never does is
 * logged and forgotten.  The queue is bounded.
 */
#ifndef XDNAT_CA_NOTIFY_H
#define XDNAT_CA_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define XD_NOTIFY_TRIES     7        /* 1 + 6 resends: 63 s in all */
#define XD_NOTIFY_QUEUE_MAX 4096

struct xd_notifier;

/* Bind UDP @src_be:@port.  Errors printed. */
int xd_notifier_open(uint32_t src_be, uint16_t port, struct xd_notifier **out);
void xd_notifier_close(struct xd_notifier *n);
int xd_notifier_fd(const struct xd_notifier *n);
/* Queue @der for @remote_be:port (copied); @what names it in logs. */
int xd_notifier_queue(struct xd_notifier *n, uint32_t remote_be, const uint8_t *der, size_t len,
		      const char *what);
/* Read acknowledgements, send what is due; returns ms until the next
 * resend (at most 1000). */
int xd_notifier_run(struct xd_notifier *n, uint64_t now_ms);
/* Delivered / given up so far (for tests and metrics). */
void xd_notifier_counts(const struct xd_notifier *n, uint64_t *acked, uint64_t *failed);

#endif
