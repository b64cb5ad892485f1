#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Active/active (ECMP) failover with the routers' state in etcd (issue 17):
# selftests/e2e_failover_ecmp.sh with XC_STORE=etcd (selftests/lib/cluster.sh).
# Three etcd members; both routers with `[store] backend = etcd`; the hosts
# register over RSIP at the VIP, so their blocks live in etcd and both
# routers' maps follow the store.  On top of the static variant's checks
# (25 MB byte-identical, SAs kept, interruption measured) the surviving
# router renews every host's leases (the hosts reconnect to the VIP it now
# holds) and grants a host that arrives after the failover.  Fails with
# the missing tool's name when etcd, etcdctl or keepalived is not installed
# (scripts/deps.sh).
XC_STORE=etcd exec bash "$(dirname "$0")/e2e_failover_ecmp.sh" "$@"
