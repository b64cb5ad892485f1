#!/usr/bin/env bash
# The Scapy ESP/AH test with the router attached through tc (cls_bpf)
# instead of native XDP: the same checks must hold for the fallback datapath.
XD_MODE=tc exec bash "$(dirname "$0")/e2e_scapy_ipsec.sh"
