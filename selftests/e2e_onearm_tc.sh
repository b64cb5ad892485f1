#!/usr/bin/env bash
# One-arm mode through the tc (cls_bpf) datapath: the same checks must hold.
XD_MODE=tc exec bash "$(dirname "$0")/e2e_onearm.sh"
