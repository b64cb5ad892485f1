/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by pins.c and pins_shared.c only: a mapping of one owner array. */
#ifndef XDNAT_PINS_PRIV_H
#define XDNAT_PINS_PRIV_H

#include "xdnat.h"

struct owner_view {
	struct xdnat_owner *slots;
	size_t len;   /* bytes mapped */
	uint32_t n;   /* entries */
};

int xd_view_map(int fd, struct owner_view *v);
void xd_unview(struct owner_view *v);
/* 0 when host @id exists (its entry in *h), else -ENOENT with a message. */
int xd_need_host(struct xd_maps *m, uint32_t id, struct xdnat_host *h);

#endif
