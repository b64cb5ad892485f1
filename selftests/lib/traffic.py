#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Traffic endpoints for the xdnat netns tests and the demo.

Plain sockets only (no third-party modules).  Every subcommand prints one
JSON object on stdout, so shell tests can check results with a one-liner;
a server prints {"listening": ...} first so the caller knows it is ready.

  tcp-server  --port P [--bind A] [--timeout S] [--gaps N]
              accept one connection, read to EOF, print sha256/bytes/peer and
              the N longest stalls [ms, seconds after t0 (wall clock)]
  tcp-client  --dst A --port P --bytes N [--sport S] [--seed X] [--rate BPS
              [--until-file F]]
              send N deterministic pseudo-random bytes, print their sha256
  udp-echo    --port P [--count N] [--timeout S]
              echo N datagrams back, print the peers seen
  udp-client  --dst A --port P [--sport S] [--count N] [--size B]
              send N datagrams, count the echoes
  raw-send    --dst A --proto N --hex H [--src A] [--count N]
              send whole IPv4 packets (IP_HDRINCL) given as hex
  raw-recv    --proto N [--count N] [--timeout S]
              print every IPv4 packet of that protocol received, as hex
  ipv4        --src A --dst A --proto N --payload-hex H [--id N] [--ttl N]
              print a complete IPv4 packet (valid checksum) as hex
  udp-stream  --dst A --port P --rate PPS --seconds S [--sport S]
              send sequence-numbered datagrams at a steady rate
  udp-count   --port P [--idle S] [--timeout S]
              count a udp-stream: received, lost (gaps), duplicates, reordered
"""
import argparse
import hashlib
import json
import os
import random
import select
import socket
import struct
import sys
import time


def out(obj):
    print(json.dumps(obj), flush=True)


def payload(nbytes, seed):
    rng = random.Random(seed)
    return rng.randbytes(nbytes)


def ip_checksum(hdr):
    if len(hdr) % 2:
        hdr += b"\0"
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def build_ipv4(src, dst, proto, data, ident=0x1234, ttl=64, df=True):
    tot = 20 + len(data)
    frag = 0x4000 if df else 0
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident, frag, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    csum = ip_checksum(hdr)
    hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
    return hdr + data


def cmd_tcp_server(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(4)
    out({"listening": a.port})
    s.settimeout(a.timeout)
    c, peer = s.accept()
    c.settimeout(a.timeout)
    h = hashlib.sha256()
    n = 0
    t0 = last = time.monotonic()
    epoch = time.time() - t0        # monotonic -> wall clock, for the caller
    gaps = []                       # (stall, when): data stopped arriving
    while True:
        b = c.recv(65536)
        now = time.monotonic()
        if not b:
            break
        gaps.append((now - last, last - t0))
        last = now
        h.update(b)
        n += len(b)
    c.close()
    s.close()
    top = sorted(gaps, reverse=True)[:a.gaps]
    out({"sha256": h.hexdigest(), "bytes": n, "peer": peer[0], "peer_port": peer[1],
         "seconds": round(last - t0, 3), "t0": round(epoch + t0, 3),
         "gaps": sorted([[round(g * 1000), round(at, 2)] for g, at in top], key=lambda x: x[1])})


def cmd_tcp_client(a):
    data = payload(a.bytes, a.seed)
    h = hashlib.sha256(data)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.sport:
        s.bind(("0.0.0.0", a.sport))
    s.settimeout(a.timeout)
    s.connect((a.dst, a.port))
    t0 = time.monotonic()
    n = len(data)
    if a.rate:
        # Paced: 10 ms worth of bytes every 10 ms (a steady stream that a
        # move interrupts, instead of one burst).
        step = max(1, a.rate // 100)
        for off in range(0, len(data), step):
            due = t0 + off / a.rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            s.sendall(data[off:off + step])
        # --until-file: go on at the same pace (more of the same stream)
        # until the file exists.
        rng = random.Random(a.seed + 1)
        while a.until_file and not os.path.exists(a.until_file):
            d = t0 + n / a.rate - time.monotonic()
            if d > 0:
                time.sleep(d)
            more = rng.randbytes(step)
            s.sendall(more)
            h.update(more)
            n += step
    else:
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    # Wait for the server's FIN so the bytes are known to have arrived.
    while s.recv(4096):
        pass
    dt = time.monotonic() - t0
    local = s.getsockname()
    s.close()
    out({"sha256": h.hexdigest(), "bytes": n,
         "sport": local[1], "seconds": round(dt, 3)})


def cmd_udp_echo(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    out({"listening": a.port})
    peers = {}
    n = 0
    deadline = time.monotonic() + a.timeout
    while n < a.count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        b, peer = s.recvfrom(65535)
        try:
            s.sendto(b, peer)
        except OSError:
            pass        # no route back for a moment (a path moving): lost
        key = "%s:%d" % peer
        peers[key] = peers.get(key, 0) + 1
        n += 1
    s.close()
    out({"echoed": n, "peers": peers})


def cmd_udp_client(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("0.0.0.0", a.sport))
    s.connect((a.dst, a.port))
    got = 0
    for i in range(a.count):
        msg = struct.pack("!I", i) + payload(max(0, a.size - 4), i)
        s.send(msg)
        r, _, _ = select.select([s], [], [], a.timeout)
        if r:
            b = s.recv(65535)
            if b == msg:
                got += 1
    local = s.getsockname()
    s.close()
    out({"sent": a.count, "echoed": got, "sport": local[1]})


def cmd_raw_send(a):
    pkt = bytes.fromhex(a.hex)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, a.proto)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(a.count):
        s.sendto(pkt, (a.dst, 0))
    s.close()
    out({"sent": a.count, "bytes": len(pkt)})


def cmd_raw_recv(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, a.proto)
    out({"listening": a.proto})
    pkts = []
    deadline = time.monotonic() + a.timeout
    while len(pkts) < a.count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        b = s.recv(65535)
        pkts.append(b.hex())
    s.close()
    out({"received": len(pkts), "packets": pkts})


def cmd_ipv4(a):
    data = bytes.fromhex(a.payload_hex)
    out({"hex": build_ipv4(a.src, a.dst, a.proto, data, a.id, a.ttl).hex()})


def cmd_udp_stream(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("0.0.0.0", a.sport))
    s.connect((a.dst, a.port))
    total = int(a.rate * a.seconds)
    pad = b"\0" * max(0, a.size - 8)
    t0 = time.monotonic()
    errors = 0
    for seq in range(total):
        # Pace against the clock, not per packet: bursts stay small.
        due = t0 + seq / a.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        try:
            s.send(struct.pack("!Q", seq) + pad)
        except OSError:
            errors += 1
    s.close()
    out({"sent": total, "send_errors": errors, "seconds": round(time.monotonic() - t0, 3)})


def cmd_udp_count(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.bind, a.port))
    out({"listening": a.port})
    seen = set()
    dups = reordered = 0
    last = -1
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        # Stop once the stream has been silent for --idle seconds.
        r, _, _ = select.select([s], [], [], a.idle if seen else deadline - time.monotonic())
        if not r:
            if seen:
                break
            continue
        b = s.recv(65535)
        if len(b) < 8:
            continue
        seq = struct.unpack("!Q", b[:8])[0]
        if seq in seen:
            dups += 1
            continue
        if seq < last:
            reordered += 1
        last = max(last, seq)
        seen.add(seq)
    s.close()
    top = max(seen) + 1 if seen else 0
    out({"received": len(seen), "highest": top, "lost": top - len(seen),
         "duplicates": dups, "reordered": reordered})


def ike_payload(spii, spir, flags, marker, body=40):
    """An IKEv2 header (RFC 7296 3.1) + body; with marker the RFC 3948
    non-ESP marker first.  SPIs are 16 hex digits."""
    hdr = bytes.fromhex(spii) + bytes.fromhex(spir)
    hdr += bytes([33, 0x20, 34 if int(spir, 16) == 0 else 35, flags])
    hdr += struct.pack("!II", 0 if int(spir, 16) == 0 else 1, 28 + body)
    return (b"\0\0\0\0" if marker else b"") + hdr + payload(body, flags)


def cmd_ike(a):
    """Print the hex of an IKE or ESP-in-UDP payload (for udp-peer --send)."""
    if a.esp is not None:
        data = struct.pack("!II", int(a.esp, 0), 1) + payload(a.body, 7)
    else:
        data = ike_payload(a.spii, a.spir, a.flags, a.marker, a.body)
    print(data.hex())


def cmd_udp_peer(a):
    """Bind UDP --port, send each --send HEX@DST:PORT from it, then receive
    up to --count datagrams within --timeout; report sender and payload."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.port))
    out({"listening": a.port})
    for item in a.send or []:
        data, dst = item.split("@")
        host, port = dst.rsplit(":", 1)
        s.sendto(bytes.fromhex(data), (host, int(port)))
    got = []
    deadline = time.monotonic() + a.timeout
    while len(got) < a.count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        data, peer = s.recvfrom(65535)
        got.append({"from": "%s:%d" % peer, "payload": data.hex()})
    s.close()
    out({"received": len(got), "datagrams": got})


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    q = sub.add_parser("tcp-server")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--bind", default="0.0.0.0")
    q.add_argument("--timeout", type=float, default=20)
    q.add_argument("--gaps", type=int, default=2, help="report the N longest stalls")
    q.set_defaults(fn=cmd_tcp_server)

    q = sub.add_parser("tcp-client")
    q.add_argument("--dst", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--bytes", type=int, default=1 << 20)
    q.add_argument("--sport", type=int, default=0)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--timeout", type=float, default=20)
    q.add_argument("--rate", type=int, default=0, help="bytes per second (0: as fast as possible)")
    q.add_argument("--until-file", default=None, help="with --rate: after --bytes, go on until this file exists")
    q.set_defaults(fn=cmd_tcp_client)

    q = sub.add_parser("udp-echo")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--bind", default="0.0.0.0")
    q.add_argument("--count", type=int, default=10)
    q.add_argument("--timeout", type=float, default=20)
    q.set_defaults(fn=cmd_udp_echo)

    q = sub.add_parser("udp-client")
    q.add_argument("--dst", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--sport", type=int, default=0)
    q.add_argument("--count", type=int, default=10)
    q.add_argument("--size", type=int, default=200)
    q.add_argument("--timeout", type=float, default=2)
    q.set_defaults(fn=cmd_udp_client)

    q = sub.add_parser("ike")
    q.add_argument("--spii", default="0" * 16)
    q.add_argument("--spir", default="0" * 16)
    q.add_argument("--flags", type=lambda v: int(v, 0), default=0x08)
    q.add_argument("--marker", action="store_true")
    q.add_argument("--esp", default=None, help="ESP-in-UDP with this SPI instead")
    q.add_argument("--body", type=int, default=40)
    q.set_defaults(fn=cmd_ike)

    q = sub.add_parser("udp-peer")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--send", action="append")
    q.add_argument("--count", type=int, default=0)
    q.add_argument("--timeout", type=float, default=3)
    q.set_defaults(fn=cmd_udp_peer)

    q = sub.add_parser("raw-send")
    q.add_argument("--dst", required=True)
    q.add_argument("--proto", type=int, required=True)
    q.add_argument("--hex", required=True)
    q.add_argument("--count", type=int, default=1)
    q.set_defaults(fn=cmd_raw_send)

    q = sub.add_parser("raw-recv")
    q.add_argument("--proto", type=int, required=True)
    q.add_argument("--count", type=int, default=1)
    q.add_argument("--timeout", type=float, default=10)
    q.set_defaults(fn=cmd_raw_recv)

    q = sub.add_parser("ipv4")
    q.add_argument("--src", required=True)
    q.add_argument("--dst", required=True)
    q.add_argument("--proto", type=int, required=True)
    q.add_argument("--payload-hex", required=True)
    q.add_argument("--id", type=int, default=0x1234)
    q.add_argument("--ttl", type=int, default=64)
    q.set_defaults(fn=cmd_ipv4)

    q = sub.add_parser("udp-stream")
    q.add_argument("--dst", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--sport", type=int, default=0)
    q.add_argument("--rate", type=float, default=2000)
    q.add_argument("--seconds", type=float, default=5)
    q.add_argument("--size", type=int, default=64)
    q.set_defaults(fn=cmd_udp_stream)

    q = sub.add_parser("udp-count")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--bind", default="0.0.0.0")
    q.add_argument("--idle", type=float, default=1.5)
    q.add_argument("--timeout", type=float, default=60)
    q.set_defaults(fn=cmd_udp_count)

    a = p.parse_args()
    try:
        a.fn(a)
    except (OSError, socket.timeout) as e:
        out({"error": str(e)})
        sys.exit(1)


if __name__ == "__main__":
    main()
