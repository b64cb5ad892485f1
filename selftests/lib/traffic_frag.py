#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""UDP endpoints for selftests/e2e_frag_mtu.sh (plain sockets, JSON output).

  udp-recv  --port P [--count N] [--timeout S]
            print {"listening"}, then {"got": [{"len", "sha256", "peer"}...]}
  udp-send  --dst A --port P --size B [--df] [--sport S] [--count N] [--gap S]
            send B-byte datagrams; with --df the socket forbids fragmentation
            (IP_PMTUDISC_DO); print sha256, errors, and the path MTU seen
  udp-frags --src A --dst A --sport S --dport P --size B --frag F [--order rev]
            one UDP datagram cut into F-byte IPv4 fragments by hand and sent
            with IP_HDRINCL, last fragment first (--order rev) or in order
"""
import argparse
import errno
import hashlib
import json
import select
import socket
import struct
import sys
import time

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
IP_MTU = 14


def out(obj):
    print(json.dumps(obj), flush=True)


def body(n, seed=1):
    return bytes(((seed + 7 * i + (i >> 8)) & 0xFF) for i in range(n))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_recv(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.port))
    out({"listening": a.port})
    got, deadline = [], time.time() + a.timeout
    while len(got) < a.count and time.time() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        d, peer = s.recvfrom(65535)
        got.append({"len": len(d), "sha256": hashlib.sha256(d).hexdigest(), "peer": peer[0]})
    out({"got": got})


def udp_send(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("0.0.0.0", a.sport))
    if a.df:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    s.connect((a.dst, a.port))
    d = body(a.size)
    errors = []
    for _ in range(a.count):
        try:
            s.send(d)
        except OSError as e:
            errors.append(errno.errorcode.get(e.errno, str(e.errno)))
        time.sleep(a.gap)
    try:
        mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    except OSError:
        mtu = None
    out({"sent": a.count - len(errors), "errors": errors, "mtu": mtu,
         "sha256": hashlib.sha256(d).hexdigest(), "len": len(d)})


def udp_frags(a):
    src, dst = socket.inet_aton(a.src), socket.inet_aton(a.dst)
    d = body(a.size)
    ulen = 8 + len(d)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    uh = struct.pack("!HHHH", a.sport, a.dport, ulen, 0)
    c = csum(pseudo + uh + d) or 0xFFFF
    dgram = struct.pack("!HHHH", a.sport, a.dport, ulen, c) + d
    ident = a.id
    step = a.frag - a.frag % 8
    frags = []
    for off in range(0, len(dgram), step):
        part = dgram[off:off + step]
        more = off + step < len(dgram)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident,
                         (0x2000 if more else 0) | (off // 8), 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        frags.append(ip + part)
    if a.order == "rev":
        frags.reverse()
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for f in frags:
        s.sendto(f, (a.dst, 0))
        time.sleep(a.gap)
    out({"fragments": len(frags), "sha256": hashlib.sha256(d).hexdigest(), "len": len(d)})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("udp-recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--timeout", type=float, default=5)
    s = sub.add_parser("udp-send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--sport", type=int, default=0)
    s.add_argument("--df", action="store_true")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--gap", type=float, default=0.1)
    f = sub.add_parser("udp-frags")
    f.add_argument("--src", required=True)
    f.add_argument("--dst", required=True)
    f.add_argument("--sport", type=int, required=True)
    f.add_argument("--dport", type=int, required=True)
    f.add_argument("--size", type=int, required=True)
    f.add_argument("--frag", type=int, default=1200)
    f.add_argument("--id", type=int, default=0x5EED)
    f.add_argument("--order", choices=["fwd", "rev"], default="rev")
    f.add_argument("--gap", type=float, default=0.05)
    a = p.parse_args()
    {"udp-recv": udp_recv, "udp-send": udp_send, "udp-frags": udp_frags}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
