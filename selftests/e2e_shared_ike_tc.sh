#!/usr/bin/env bash
# Shared IKE ports through the tc (cls_bpf) datapath: the same checks must hold.
XD_MODE=tc exec bash "$(dirname "$0")/e2e_shared_ike.sh"
