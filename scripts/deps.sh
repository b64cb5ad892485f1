#!/usr/bin/env bash
# Install the Debian 12 packages xdnat needs to build, run and test.
# Idempotent and quick when everything is present; needs root only when
# something is missing.
set -euo pipefail

pkgs=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc
      libcriterion-dev iproute2 tcpdump netcat-openbsd nftables ethtool
      libssl-dev openssl libsqlite3-dev python3 socat iputils-ping help2man libmicrohttpd-dev libinih-dev libmnl-dev strace
      strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
      strongswan-pki libstrongswan-extra-plugins python3-scapy python3-cryptography
      gnutls-bin libnss3-tools golang-go libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client)
# The BPF programs use the uapi ICMP header (linux/icmp.h), which includes
# libc's sys/socket.h; for the bpf target glibc asks for its 32-bit stubs.
[ "$(dpkg --print-architecture)" = amd64 ] && pkgs+=(libc6-dev-i386)
# libmnl-dev: xdnatd keeps neighbour entries over rtnetlink (loader/daemon/neigh.c);
# strace: selftests/e2e_neigh.sh checks that xdnatd runs no program.
# strongSwan (selftests/e2e_strongswan.sh, docs/STRONGSWAN.md) runs only as
# per-namespace daemons the tests start themselves (selftests/lib/strongswan.sh);
# libstrongswan-extra-plugins carries the curl fetcher that CRL fetching needs.
# python3-scapy + python3-cryptography: an ESP/AH implementation we did not write
# (selftests/e2e_scapy_ipsec.sh, selftests/lib/ipsec_scapy.py).
# gnutls-bin (certtool), libnss3-tools (certutil, vfychain, crlutil), golang-go
# (crypto/x509, built offline): independent certificate verifiers of the
# forgery suite (selftests/e2e_forgery.sh).  Its Python verifier needs
# cryptography >= 43 (PolicyBuilder), newer than Debian 12's: PYTHON=.
# libcurl4-openssl-dev + libjson-c-dev: the etcd store backend talks to etcd's
# JSON gateway (loader/store/store_etcd_kv.c); etcd-server: its tests start a
# throwaway etcd (selftests/test_store_etcd.c, docs/CLUSTER.md); etcd-client:
# etcdctl, with which selftests/e2e_store_etcd.sh reads the keys xdnatd wrote.
# strongswan-charon pulls in strongswan-starter, whose maintainer scripts would
# start an IPsec daemon in the root namespace on a systemd host: the install
# below runs with a policy-rc.d that forbids starting services, and the units
# are disabled afterwards (see strongswan_no_root_daemon).

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install packages (run with sudo)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
# No service may start during the install (strongswan-starter): a policy-rc.d
# answering 101 ("action forbidden") is honoured by invoke-rc.d and
# deb-systemd-invoke.  An existing one (containers ship one) is left alone.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	guard=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\n# xdnat scripts/deps.sh: no service starts during this install\nexit 101\n' >"$guard"
	chmod 755 "$guard"
	trap 'rm -f "$guard"' EXIT
fi
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
if [ -n "$guard" ]; then rm -f "$guard"; trap - EXIT; fi

# strongswan_no_root_daemon: on a systemd host, keep the packaged strongSwan
# units from starting at boot (xdnat's tests run charon per namespace; an
# operator who wants the packaged service enables it again with systemctl).
strongswan_no_root_daemon() {
	[ -d /run/systemd/system ] || return 0
	local u
	for u in strongswan-starter.service strongswan.service ipsec.service; do
		systemctl list-unit-files "$u" 2>/dev/null | grep -q "^$u" || continue
		systemctl disable --now "$u" >/dev/null 2>&1 || true
		echo "deps: disabled $u (xdnat runs charon per network namespace)"
	done
}
case " ${missing[*]} " in
*" strongswan-"*) strongswan_no_root_daemon ;;
esac
