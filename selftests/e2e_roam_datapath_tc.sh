#!/usr/bin/env bash
# The roaming datapath test with the router attached through tc (cls_bpf)
# instead of native XDP: the same checks must hold for the fallback datapath.
XD_MODE=tc exec bash "$(dirname "$0")/e2e_roam_datapath.sh"
