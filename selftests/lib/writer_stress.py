#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Writers and checker of selftests/e2e_writer_stress.sh (issue 13, "one writer").

  writer_stress.py ranges W N SEED -- XDNATCTL...
      writer W changes its own host ids (100+4W .. 100+4W+3) N times with
      port and SPI ranges that overlap the other writers' and the RSIP pool;
      after every change xdnatctl reports as done it reads the maps back:
      the ranges it was given must be its host's (another writer's overlap
      was not granted as well), what it freed must be gone.
  writer_stress.py sameid W N SEED -- XDNATCTL...
      host add / host del of the same ids as the other sameid writers, with
      a LAN address of its own: only one may own an id at a time (the final
      check finds a LAN index entry left behind).
  writer_stress.py pairs W N SEED -- XDNATCTL...
      N times, four `host add` of four ids with overlapping port ranges
      started at the same moment: at most one may succeed.
  writer_stress.py check PIN_DIR -- XDNATCTL...
      the end state: `xdnatctl -j host show` equals `bpftool map dump` of
      the pinned maps, the hosts and the LAN index agree, no slot is owned
      by a host that does not exist, and the RSIP store's active bindings
      are exactly what the maps give the RSIP hosts.
Each prints one JSON line; exit 1 on a violation.
"""
import collections
import json
import random
import re
import subprocess
import sys


REASONS = collections.Counter()   # why changes were refused, digits elided


def ctl(cmd, *args, want_json=False):
    argv = cmd + (["-j"] if want_json else []) + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode and args[0] in ("host", "ports", "spi") and args[1] in ("add", "del"):
        REASONS[re.sub(r"0x[0-9a-f]+|\d+", "N", p.stderr.strip().split("\n")[0])[:70]] += 1
    return p.returncode, p.stdout, p.stderr


def expand(runs):
    out = set()
    for r in runs:
        a, _, b = r.partition("-")
        a = int(a, 0)
        b = int(b, 0) if b else a
        out.update(range(a, b + 1))
    return out


def blocks(runs, bits):
    out = set()
    for r in runs:
        a, _, b = r.partition("-")
        out.update(range(int(a, 0) >> bits, (int(b or a, 0) >> bits) + 1))
    return out


BITS = 16   # the writers' SPI ranges are 2^16-SPI blocks (xdnatd's default)


def host_sets(cmd, hid):
    rc, out, _ = ctl(cmd, "host", "show", hid, want_json=True)
    if rc:
        return None
    h = json.loads(out)["hosts"][0]
    return h["lan"], expand(h["ports"]), blocks(h["spis"], BITS)


def writer_ranges(w, n, seed, cmd):
    rnd = random.Random(seed)
    ids = [100 + 4 * w + k for k in range(4)]
    ops = ok = 0
    bad = []

    def pr():
        a = 20000 + rnd.randrange(80) * 25
        return a, a + 49

    def sr():
        b = 1 + rnd.randrange(48)
        return b << 16, (b << 16) | 0xffff

    def verify(what, hid, ports=(), spis=(), gone_ports=()):
        s = host_sets(cmd, hid)
        if s is None:
            bad.append("%s: host %d gone right after it succeeded" % (what, hid))
            return
        _, p, sp = s
        if not set(ports) <= p:
            bad.append("%s: ports %s not all host %d's (has %d of them)" %
                       (what, (min(ports), max(ports)), hid, len(set(ports) & p)))
        if not set(spis) <= sp:
            bad.append("%s: SPIs not all host %d's" % (what, hid))
        if set(gone_ports) & p:
            bad.append("%s: freed ports still host %d's" % (what, hid))

    exists = set()   # our ids are ours alone: we know which exist
    for _ in range(n):
        hid = rnd.choice(ids)
        op = "add" if hid not in exists else rnd.choice(["ports+", "ports+", "ports-", "spi+", "del"])
        ops += 1
        if op == "add":
            a, b = pr()
            s0, s1 = sr()
            spi = rnd.random() < 0.5
            rc, _, _ = ctl(cmd, "host", "add", hid, "lan", "10.200.%d.%d" % (hid // 256, hid % 256),
                           "ports", "%d-%d" % (a, b), *(["spi", "0x%x-0x%x" % (s0, s1)] if spi else []))
            if rc == 0:
                exists.add(hid)
                verify("host add", hid, range(a, b + 1), [s0 >> BITS] if spi else [])
        elif op == "ports+":
            a, b = pr()
            rc, _, _ = ctl(cmd, "ports", "add", hid, "%d-%d" % (a, b))
            if rc == 0:
                verify("ports add", hid, range(a, b + 1))
        elif op == "ports-":
            s = host_sets(cmd, hid)
            ops += 1
            if not s or not s[1]:
                continue
            a = min(s[1])
            b = a
            while b + 1 in s[1] and b - a < 60:
                b += 1
            rc, _, _ = ctl(cmd, "ports", "del", hid, "%d-%d" % (a, b))
            if rc == 0:
                verify("ports del", hid, gone_ports=range(a, b + 1))
        elif op == "spi+":
            s0, s1 = sr()
            rc, _, _ = ctl(cmd, "spi", "add", hid, "0x%x-0x%x" % (s0, s1))
            if rc == 0:
                verify("spi add", hid, spis=[s0 >> BITS])
        else:
            rc, _, _ = ctl(cmd, "host", "del", hid)
            exists.discard(hid)
            if rc == 0 and host_sets(cmd, hid) is not None:
                bad.append("host del %d: still there" % hid)
        ok += rc == 0
    return {"writer": w, "mode": "ranges", "ops": ops, "succeeded": ok, "violations": bad,
            "refused": REASONS.most_common(4)}


def writer_sameid(w, n, seed, cmd):
    rnd = random.Random(seed)
    ops = ok = 0
    for _ in range(n):
        hid = 90 + rnd.randrange(3)
        rc, _, _ = ctl(cmd, "host", "add", hid, "lan", "10.201.%d.%d" % (w, hid))
        ops += 1
        ok += rc == 0
        rc, _, _ = ctl(cmd, "host", "del", hid)
        ops += 1
        ok += rc == 0
    return {"writer": w, "mode": "sameid", "ops": ops, "succeeded": ok, "violations": []}


def writer_pairs(w, n, seed, cmd):
    """Four `host add` with overlapping wide port ranges started at the same
    time (the race of issue 13: two of them used to succeed); then deleted."""
    rnd = random.Random(seed)
    ids = [60 + 4 * w + k for k in range(4)]
    ops = both = 0
    bad = []
    for _ in range(n):
        p = 1024 + rnd.randrange(4000)
        procs = [subprocess.Popen(cmd + ["host", "add", str(h), "lan", "10.203.%d.%d" % (w, h),
                                         "ports", "%d-%d" % (p + 500 * k, p + 500 * k + 30000)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for k, h in enumerate(ids)]
        rcs = [q.wait() for q in procs]
        ops += len(ids)
        if rcs.count(0) > 1:
            both += 1
            bad.append("host add %s with overlapping ports from %d: %d succeeded" %
                       (ids, p, rcs.count(0)))
        for h in ids:
            ctl(cmd, "host", "del", h)
            ops += 1
    return {"writer": w, "mode": "pairs", "ops": ops, "both_succeeded": both, "violations": bad[:5]}


def bpftool_dump(path):
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", path], check=True,
                         capture_output=True, text=True).stdout
    ents = json.loads(out)
    res = []
    for e in ents:
        if "formatted" in e:
            res.append((e["formatted"]["key"], e["formatted"]["value"]))
        else:
            res.append((e["key"], e["value"]))
    return res


def check(pin, cmd):
    bad = []
    cfg = json.loads(ctl(cmd, "config", want_json=True)[1])
    max_hosts = cfg["max_hosts"]
    bits = cfg["spi_block_bits"]
    hosts = {k: v for k, v in bpftool_dump(pin + "/xdnat_hosts") if v["flags"] & 1}
    lan_idx = dict(bpftool_dump(pin + "/xdnat_lan_idx"))
    # Owners of the maps: real host ids only (the shared IKE / router marks are above).
    ports_map, spis_map = {}, {}
    for k, v in bpftool_dump(pin + "/xdnat_ports"):
        if 0 < v["host_id"] < max_hosts:
            ports_map[k] = v["host_id"]
    for k, v in bpftool_dump(pin + "/xdnat_spis"):
        if 0 < v["host_id"] < max_hosts:
            spis_map[k] = v["host_id"]
    # 1. The listing equals the maps.
    listing = json.loads(ctl(cmd, "host", "show", want_json=True)[1])["hosts"]
    lp, ls = {}, {}
    for h in listing:
        g = cfg["globals"].index(h["global"])
        for p in expand(h["ports"]):
            lp[g * 65536 + p] = h["id"]
        for s in blocks(h["spis"], bits):
            ls[s] = h["id"]
    if lp != ports_map:
        diff = set(lp.items()) ^ set(ports_map.items())
        bad.append("host show differs from the port map in %d slots, e.g. %s" %
                   (len(diff), sorted(diff)[:4]))
    if ls != spis_map:
        bad.append("host show differs from the SPI map: %s" %
                   sorted(set(ls.items()) ^ set(spis_map.items()))[:4])
    if sorted(h["id"] for h in listing) != sorted(hosts):
        bad.append("host show lists %s, the host map %s" %
                   (sorted(h["id"] for h in listing), sorted(hosts)))
    # 2. Hosts and LAN index agree; no owner that is not a host.
    for lan, hid in lan_idx.items():
        if hid not in hosts or hosts[hid]["lan_addr"] != lan:
            bad.append("LAN index entry %s -> host %d, which %s" %
                       (lan, hid, "has another LAN address" if hid in hosts else "does not exist"))
    for hid, h in hosts.items():
        if lan_idx.get(h["lan_addr"]) != hid:
            bad.append("host %d's LAN address is not indexed to it" % hid)
    orphans = {o for o in list(ports_map.values()) + list(spis_map.values()) if o not in hosts}
    if orphans:
        bad.append("blocks owned by hosts that do not exist: %s" % sorted(orphans))
    # 3. The store's active RSIP bindings are exactly the RSIP hosts' blocks.
    rsip = json.loads(ctl(cmd, "rsip", "list", want_json=True)[1])
    want_p, want_s, rsip_ids = {}, {}, set()
    for b in rsip.get("bindings", []):
        hid = b.get("host_id", 0)
        if b.get("state") != "active" or not hid:
            continue
        rsip_ids.add(hid)
        g = hosts[hid]["gaddr_index"] if hid in hosts else 0
        if b["kind"] == "ports":
            for p in range(b["first"], b["last"] + 1):
                if (g * 65536 + p) in want_p:
                    bad.append("the store gives port %d to two bindings" % p)
                want_p[g * 65536 + p] = hid
        else:
            for s in range(b["first"] >> bits, (b["last"] >> bits) + 1):
                want_s[s] = hid
    have_p = {k: v for k, v in ports_map.items() if v in rsip_ids}
    have_s = {k: v for k, v in spis_map.items() if v in rsip_ids}
    if want_p != have_p:
        bad.append("RSIP store and port map differ: %s" % sorted(set(want_p.items()) ^ set(have_p.items()))[:4])
    if want_s != have_s:
        bad.append("RSIP store and SPI map differ: %s" % sorted(set(want_s.items()) ^ set(have_s.items()))[:4])
    return {"mode": "check", "hosts": len(hosts), "ports_owned": len(ports_map),
            "spi_blocks_owned": len(spis_map), "rsip_hosts": len(rsip_ids),
            "rsip_ports": len(want_p), "violations": bad}


def main():
    sep = sys.argv.index("--")
    args, cmd = sys.argv[1:sep], sys.argv[sep + 1:]
    if args[0] == "check":
        r = check(args[1], cmd)
    elif args[0] == "ranges":
        r = writer_ranges(int(args[1]), int(args[2]), int(args[3]), cmd)
    elif args[0] == "pairs":
        r = writer_pairs(int(args[1]), int(args[2]), int(args[3]), cmd)
    else:
        r = writer_sameid(int(args[1]), int(args[2]), int(args[3]), cmd)
    print(json.dumps(r))
    sys.exit(1 if r["violations"] else 0)


if __name__ == "__main__":
    main()
