#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Measure a failover: how long traffic stopped, how many packets were lost.

Plain sockets only.  Prints one JSON object on stdout.  The echo server on
the other side is traffic.py udp-echo; the TCP transfer of the failover
tests is traffic.py tcp-client --rate / tcp-server.

  probe     --dst A --port P [--interval-ms MS] [--seconds S] [--flows N]
            [--sport-base P] [--bind A]
            every MS milliseconds a datagram with a sequence number goes to
            the echo server, round robin over N flows (source ports
            SPORT-BASE, +1, ...: ECMP hashes each flow on its own); the
            echoes are counted.  Prints sent, received, lost, duplicates and
            the interruption: the longest time during which a flow got no
            echo, i.e. the send time of the first datagram echoed after the
            gap minus that of the last echoed before it, minus the flow's
            interval (0 when nothing was lost).  Echoes count for
            --grace-ms after the last send.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

HDR = struct.Struct("!IQd")   # flow, sequence number, send time (monotonic)


def out(obj):
    print(json.dumps(obj), flush=True)


def interruption(seqs, sent_ts, got, interval):
    """Longest stretch without an echo in one flow, in ms (see --help):
    seqs are the flow's sequence numbers in sending order."""
    worst = 0.0
    at = None
    last = None          # last echoed sequence number
    missed = False       # something lost since
    for q in seqs:
        if q not in got:
            missed = True
            continue
        if missed and last is not None:
            gap = sent_ts[q] - sent_ts[last] - interval
            if gap > worst:
                worst, at = gap, sent_ts[last]
        last, missed = q, False
    return worst * 1000.0, at


def cmd_probe(a):
    flows = []
    for i in range(a.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((a.bind, a.sport_base + i if a.sport_base else 0))
        s.connect((a.dst, a.port))
        s.setblocking(False)
        flows.append(s)
    interval = a.interval_ms / 1000.0
    total = int(a.seconds / interval)
    sent_ts = {}            # seq -> send time
    flow_of = {}            # seq -> flow
    got = [set() for _ in flows]
    dups = send_errors = 0
    t0 = time.monotonic()
    start_wall = time.time()
    seq = 0

    def drain(timeout):
        nonlocal dups
        r, _, _ = select.select(flows, [], [], max(0.0, timeout))
        for s in r:
            while True:
                try:
                    b = s.recv(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if len(b) < HDR.size:
                    continue
                f, q, _ = HDR.unpack_from(b)
                if f >= len(got) or q not in sent_ts:
                    continue
                if q in got[f]:
                    dups += 1
                else:
                    got[f].add(q)

    while seq < total:
        due = t0 + seq * interval
        now = time.monotonic()
        if due > now:
            drain(due - now)
            continue
        f = seq % len(flows)
        ts = time.monotonic()
        try:
            flows[f].send(HDR.pack(f, seq, ts) + b"\0" * max(0, a.size - HDR.size))
            sent_ts[seq] = ts
            flow_of[seq] = f
        except OSError:
            # No route / unreachable while the path moves: counts as lost.
            sent_ts[seq] = ts
            flow_of[seq] = f
            send_errors += 1
        seq += 1
    end = time.monotonic() + a.grace_ms / 1000.0
    while time.monotonic() < end:
        drain(end - time.monotonic())
    for s in flows:
        s.close()

    per_flow = []
    worst = 0.0
    worst_at = None
    for f in range(len(flows)):
        mine = sorted(q for q in sent_ts if flow_of[q] == f)
        gap, at = interruption(mine, sent_ts, got[f], interval * len(flows))
        lost = len(mine) - len(got[f])
        # A flow whose echoes stopped for good: the gap runs to the end.
        if got[f] and max(got[f]) != max(mine):
            tail = (sent_ts[max(mine)] - sent_ts[max(got[f])]) * 1000.0
            if tail > gap:
                gap, at = tail, sent_ts[max(got[f])]
        if not got[f]:
            gap, at = a.seconds * 1000.0, t0
        per_flow.append({"sent": len(mine), "received": len(got[f]), "lost": lost,
                         "interruption_ms": round(gap, 1)})
        if gap > worst:
            worst, worst_at = gap, at
    received = sum(len(g) for g in got)
    out({"sent": len(sent_ts), "received": received, "lost": len(sent_ts) - received,
         "duplicates": dups, "send_errors": send_errors, "interval_ms": a.interval_ms,
         "flows": len(flows), "interruption_ms": round(worst, 1),
         "interruption_at": round(start_wall + (worst_at - t0), 3) if worst_at else None,
         "per_flow": per_flow})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("probe")
    q.add_argument("--dst", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--bind", default="0.0.0.0")
    q.add_argument("--sport-base", type=int, default=0)
    q.add_argument("--flows", type=int, default=1)
    q.add_argument("--interval-ms", type=float, default=10)
    q.add_argument("--seconds", type=float, default=20)
    q.add_argument("--size", type=int, default=64)
    q.add_argument("--grace-ms", type=float, default=1500)
    q.set_defaults(fn=cmd_probe)
    a = p.parse_args()
    if a.cmd == "probe" and (a.flows < 1 or a.interval_ms <= 0 or a.seconds <= 0):
        p.error("--flows >= 1, --interval-ms > 0 and --seconds > 0")
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
