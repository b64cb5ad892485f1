/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Definitions newer than the uapi headers Debian 12 ships (linux-libc-dev
 * 6.1).  Guarded so newer headers win; the programs probe at run time for
 * what the running kernel lacks instead of refusing to load on 5.15/6.1.
 */
#ifndef XDNAT_LIB_COMPAT_H
#define XDNAT_LIB_COMPAT_H

#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7) /* Linux 6.3 */
#endif

#endif
