// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The name tables of the map ABI, expanded once from the lists in
 * maps/xdnat_abi.h; every tool prints and matches names through these. */
#include "xdnat_abi.h"

const char *const xdnat_reason_names[XDNAT_R_MAX] = {
#define XDNAT_R_NAME_(id, name) [XDNAT_R_##id] = #name,
	XDNAT_REASONS(XDNAT_R_NAME_)
#undef XDNAT_R_NAME_
};

const char *const xdnat_host_reason_names[XDNAT_HR_MAX] = {
#define XDNAT_HR_NAME_(id, name) [XDNAT_HR_##id] = #name,
	XDNAT_HOST_REASONS(XDNAT_HR_NAME_)
#undef XDNAT_HR_NAME_
};

const struct xdnat_map_desc xdnat_maps[XDNAT_M_MAX] = {
#define XDNAT_M_DESC_(id, nm, pin) [XDNAT_M_##id] = { .name = #nm, .pinned = pin },
	XDNAT_MAPS(XDNAT_M_DESC_)
#undef XDNAT_M_DESC_
};
