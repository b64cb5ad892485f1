#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Classify IKE and ESP-in-UDP (RFC 3948) in a pcap, for the strongSwan tests.

Plain Python (no third-party modules).  Reads a pcap written by tcpdump on
an Ethernet interface; IP-in-IP packets (what the xdnat router sends a host)
are unwrapped: "outer" is the tunnel header, the rest describes the inner
packet.  Prints one JSON object:

  {"ips": [...every IPv4 address seen in an IP header, outer and inner...],
   "packets": [{"src", "dst", "sport", "dport", "kind": "ike"|"esp"|"keepalive"|"frag",
                "spi": "xxxxxxxx" (ESP), "ispi"/"rspi": 16 hex, "flags",
                "exchange": IKE header fields (IKE),
                "tunnel": [outer src, outer dst] or null,
                "l4": hex of the UDP header + payload}]}

On UDP ports other than 500, IKE carries a 4-byte zero non-ESP marker and
anything else is ESP (first 4 bytes = SPI); a single 0xff byte is a NAT-T
keepalive.  Port 500 is always IKE.  A first fragment is classified by its
UDP header; a later one is "frag" (no ports), its "l4" = offset + payload.
"""
import json
import socket
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xa1b2c3d4, 0xa1b23c4d):
            end = "<"
        elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
            end = ">"
        else:
            raise SystemExit("%s: not a pcap file" % path)
        linktype = struct.unpack(end + "I", hdr[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(end + "IIII", rec)[2]
            data = f.read(incl)
            if linktype == 1:              # Ethernet
                if len(data) < 14 or data[12:14] != b"\x08\x00":
                    continue
                yield data[14:]
            elif linktype == 113:          # Linux cooked (any)
                if len(data) < 16 or data[14:16] != b"\x08\x00":
                    continue
                yield data[16:]


def ip4(b):
    if len(b) < 20 or b[0] >> 4 != 4:
        return None
    ihl = (b[0] & 15) * 4
    tot = struct.unpack("!H", b[2:4])[0]
    return {"src": socket.inet_ntoa(b[12:16]), "dst": socket.inet_ntoa(b[16:20]),
            "proto": b[9], "frag": struct.unpack("!H", b[6:8])[0] & 0x3fff,
            "payload": b[ihl:tot]}


def main():
    ips = set()
    out = []
    for raw in packets(sys.argv[1]):
        p = ip4(raw)
        if not p:
            continue
        ips.update((p["src"], p["dst"]))
        tunnel = None
        if p["proto"] == 4:
            q = ip4(p["payload"])
            if not q:
                continue
            tunnel = [p["src"], p["dst"]]
            p = q
            ips.update((p["src"], p["dst"]))
        if p["proto"] == 17 and p["frag"] & 0x1fff:
            # a later fragment (no UDP header): compared as raw IP payload
            out.append({"src": p["src"], "dst": p["dst"], "kind": "frag", "tunnel": tunnel,
                        "l4": "%04x" % p["frag"] + p["payload"].hex()})
            continue
        if p["proto"] != 17 or len(p["payload"]) < 8:
            continue
        u = p["payload"]
        sport, dport = struct.unpack("!HH", u[:4])
        body = u[8:]
        rec = {"src": p["src"], "dst": p["dst"], "sport": sport, "dport": dport,
               "tunnel": tunnel, "l4": u.hex()}
        if sport == 500 or dport == 500:
            if len(body) < 28:
                continue
            rec.update(kind="ike", ispi=body[:8].hex(), rspi=body[8:16].hex(),
                       exchange=body[18], flags=body[19])
        elif body == b"\xff":
            rec.update(kind="keepalive")
        elif len(body) >= 4 and body[:4] == b"\0\0\0\0":
            if len(body) < 32:
                continue
            rec.update(kind="ike", ispi=body[4:12].hex(), rspi=body[12:20].hex(),
                       exchange=body[22], flags=body[23])
        elif len(body) >= 8:
            rec.update(kind="esp", spi=body[:4].hex())
        else:
            continue
        out.append(rec)
    print(json.dumps({"ips": sorted(ips), "packets": out}))


if __name__ == "__main__":
    main()
