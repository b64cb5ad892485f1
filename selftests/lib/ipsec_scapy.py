#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Raw ESP and AH made and checked by Scapy (an IPsec implementation that
is not ours) for the xdnat end-to-end tests.

  send  --src A --dst G --seed S --sa esp:SPI --sa ah:SPI ... [--count N]
        [--mode transport|tunnel] [--esp-key HEX] [--ah-key HEX]
        at the remote: for every SA, N packets (round-robin over the SAs),
        each an IPv4 protocol 50/51 packet to G sent through a raw socket;
        prints {"sent": {"esp:0x...": N, ...}, "digests": {"esp:0x...": [sha256
        of each packet as sent], ...}}
  recv  --block LO-HI --seed S --expect N [--timeout S] [--linger S]
        [--mode transport|tunnel] [--esp-key HEX] [--ah-key HEX]
        at a host: raw sockets for protocols 50 and 51 (the host's tc
        program has already removed the router's IP-in-IP header, so these
        are the remote's packets as it sent them); every packet whose SPI
        is in LO-HI is decrypted (ESP) or ICV-checked (AH) with the SA the
        sender used, and its inner payload compared with what the sender
        put in; any other SPI counts as foreign.  Prints one JSON line.

SAs (the same on both sides, nothing negotiated):
  ESP  AES-GCM with a 16-byte ICV (RFC 4106), 256-bit key + 4-byte salt,
       no separate integrity algorithm (the GCM tag is the ICV);
  AH   HMAC-SHA-256-128 (RFC 4868), 256-bit key; the ICV covers the
       immutable fields of the outer IPv4 header (RFC 4302 3.3.3.1).
Keys: --esp-key/--ah-key (hex, the same for every SPI), or else derived
per SA from --seed: HMAC-SHA-512(seed, "esp:0xSPI" | "ah:0xSPI"), so every
SPI has its own key.

Mode: transport by default, so the protected packet is the very IPv4
packet the router forwards (remote -> G): ESP carries UDP 4242 -> 4242
and AH's ICV also covers that outer header's addresses, length, ID and
protocol.  --mode tunnel puts an inner IPv4 (remote -> G) / UDP under an
outer IPv4 header (remote -> G) instead.

The inner payload is recognisable: b"xdnat-scapy KIND spi=0xSPI seq=SEQ "
followed by 16..900 bytes determined by (seed, kind, SPI, seq); the
receiver rebuilds it from the header's SPI and sequence number and
compares byte for byte.  As a negative control the receiver also tries
every packet with a wrong key and counts how often that was rejected
(should be every time: the checks are real).

Exit status: 0 after printing the JSON (the test judges the counts); 2 if
Scapy or python3-cryptography is missing.
"""
import argparse
import hashlib
import hmac
import json
import random
import select
import socket
import struct
import sys
import time

try:
    import cryptography  # noqa: F401  (Scapy's ESP/AH crypto needs it)
    from scapy.layers.inet import IP, UDP
    from scapy.layers.ipsec import AH, ESP, IPSecIntegrityError, SecurityAssociation
    from scapy.packet import Raw
except ImportError as e:  # pragma: no cover - reported by the test
    print(json.dumps({"error": "scapy/cryptography missing: %s (install python3-scapy "
                      "python3-cryptography: scripts/deps.sh)" % e, "python": sys.executable}),
          flush=True)
    sys.exit(2)

UDP_PORT = 4242
KINDS = {"esp": 50, "ah": 51}


def out(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def sa_name(kind, spi):
    return "%s:0x%08x" % (kind, spi)


def derive(seed, kind, spi, n):
    d = hmac.new(seed.encode(), sa_name(kind, spi).encode(), hashlib.sha512).digest()
    return d[:n]


def make_sa(kind, spi, a, src, dst, wrong=False):
    if kind == "esp":
        key = bytes.fromhex(a.esp_key) if a.esp_key else derive(a.seed, kind, spi, 36)
        if wrong:
            key = bytes([key[0] ^ 0x01]) + key[1:]
        if len(key) not in (20, 28, 36):
            raise SystemExit("ESP key must be 16/24/32 bytes of AES key + 4 bytes of salt")
        kw = dict(crypt_algo="AES-GCM", crypt_key=key, auth_algo="NULL")
        proto = ESP
    else:
        key = bytes.fromhex(a.ah_key) if a.ah_key else derive(a.seed, kind, spi, 32)
        if wrong:
            key = bytes([key[0] ^ 0x01]) + key[1:]
        kw = dict(auth_algo="SHA2-256-128", auth_key=key)
        proto = AH
    if a.mode == "tunnel":
        kw["tunnel_header"] = IP(src=src, dst=dst)
    return SecurityAssociation(proto, spi=spi, **kw)


def inner_payload(seed, kind, spi, seq):
    rng = random.Random("%s/%s/%d/%d" % (seed, kind, spi, seq))
    head = ("xdnat-scapy %s spi=0x%08x seq=%d " % (kind, spi, seq)).encode()
    return head + rng.randbytes(rng.randint(16, 900))


def parse_sa(text):
    kind, _, spi = text.partition(":")
    if kind not in KINDS or not spi:
        raise argparse.ArgumentTypeError("SA is esp:SPI or ah:SPI, not %r" % text)
    return kind, int(spi, 0)


def cmd_send(a):
    sas = [(kind, spi, make_sa(kind, spi, a, a.src, a.dst)) for kind, spi in a.sa]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = {}
    digests = {}
    ipid = a.first_id
    for seq in range(1, a.count + 1):
        for kind, spi, sa in sas:
            # A non-zero ID set before the ICV is computed (AH covers it):
            # with IP_HDRINCL the kernel would fill in a zero ID.
            plain = IP(src=a.src, dst=a.dst, id=ipid) / UDP(sport=UDP_PORT, dport=UDP_PORT) / \
                Raw(inner_payload(a.seed, kind, spi, seq))
            if sa.tunnel_header is not None:
                sa.tunnel_header.id = ipid
            wire = bytes(sa.encrypt(plain, seq_num=seq))
            ipid = ipid % 65535 + 1
            s.sendto(wire, (a.dst, 0))
            name = sa_name(kind, spi)
            sent[name] = sent.get(name, 0) + 1
            digests.setdefault(name, []).append(hashlib.sha256(wire).hexdigest())
            if a.gap:
                time.sleep(a.gap)
    s.close()
    out({"sent": sent, "total": sum(sent.values()), "digests": digests, "mode": a.mode})


def check_one(wire, kind, spi, a):
    """Decrypt/verify one received packet; returns (ok, seq, reason, rejected_wrong_key)."""
    pkt = IP(wire)
    layer = pkt[ESP] if kind == "esp" else pkt[AH]
    seq = layer.seq
    src, dst = pkt.src, pkt.dst
    rejected = False
    try:
        make_sa(kind, spi, a, src, dst, wrong=True).decrypt(IP(wire))
    except IPSecIntegrityError:
        rejected = True
    except Exception:  # noqa: BLE001 - a malformed result also means "not accepted"
        rejected = True
    try:
        plain = make_sa(kind, spi, a, src, dst).decrypt(pkt)
    except IPSecIntegrityError as e:
        return False, seq, "integrity check failed: %s" % str(e)[:80], rejected
    # Scapy leaves what follows AH as Raw: parse the result again as IPv4
    # (transport: the restored header + UDP; tunnel: the inner packet).
    plain = IP(bytes(plain))
    if not plain.haslayer(UDP) or plain[UDP].dport != UDP_PORT:
        return False, seq, "no UDP %d inside: %r" % (UDP_PORT, plain.summary()), rejected
    got = bytes(plain[UDP].payload)
    if got != inner_payload(a.seed, kind, spi, seq):
        return False, seq, "inner payload differs (%r...)" % got[:40], rejected
    return True, seq, "", rejected


def cmd_recv(a):
    lo, _, hi = a.block.partition("-")
    lo, hi = int(lo, 0), int(hi, 0)
    socks = {}
    for kind, proto in KINDS.items():
        socks[socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)] = kind
    out({"listening": sorted(KINDS.values())})
    res = {"esp_decrypted": 0, "ah_verified": 0, "failures": [], "foreign": [],
           "by_sa": {}, "duplicates": 0, "wrong_key_rejected": 0, "received": 0,
           "digests": [], "mode": a.mode}
    seen = set()
    ok_total = 0
    deadline = time.monotonic() + a.timeout
    linger_end = None
    while True:
        now = time.monotonic()
        end = linger_end if linger_end is not None else deadline
        if now >= end:
            break
        r, _, _ = select.select(list(socks), [], [], end - now)
        for s in r:
            kind = socks[s]
            wire = s.recv(65535)
            res["received"] += 1
            res["digests"].append(hashlib.sha256(wire).hexdigest())
            try:
                pkt = IP(wire)
                spi = (pkt[ESP] if kind == "esp" else pkt[AH]).spi
            except Exception as e:  # noqa: BLE001
                res["failures"].append({"kind": kind, "reason": "unparsable: %s" % e})
                continue
            if not lo <= spi <= hi:
                res["foreign"].append(sa_name(kind, spi))
                continue
            try:
                ok, seq, reason, rejected = check_one(wire, kind, spi, a)
            except Exception as e:  # noqa: BLE001
                ok, seq, reason, rejected = False, None, "error: %r" % e, False
            res["wrong_key_rejected"] += rejected
            if not ok:
                res["failures"].append({"sa": sa_name(kind, spi), "seq": seq, "reason": reason})
                continue
            if (kind, spi, seq) in seen:
                res["duplicates"] += 1
                continue
            seen.add((kind, spi, seq))
            res["esp_decrypted" if kind == "esp" else "ah_verified"] += 1
            res["by_sa"][sa_name(kind, spi)] = res["by_sa"].get(sa_name(kind, spi), 0) + 1
            ok_total += 1
        if linger_end is None and ok_total >= a.expect:
            # Everything expected is here: listen a little longer so that
            # extra (foreign, duplicate) packets are counted too.
            linger_end = time.monotonic() + a.linger
    for s in socks:
        s.close()
    out(res)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("send", "recv"):
        q = sub.add_parser(name)
        q.add_argument("--seed", default="xdnat")
        q.add_argument("--mode", choices=("transport", "tunnel"), default="transport")
        q.add_argument("--esp-key", help="hex: AES key (16/24/32 bytes) + 4-byte salt")
        q.add_argument("--ah-key", help="hex: HMAC-SHA-256 key")
        if name == "send":
            q.add_argument("--src", required=True)
            q.add_argument("--dst", required=True)
            q.add_argument("--sa", type=parse_sa, action="append", required=True)
            q.add_argument("--count", type=int, default=8)
            q.add_argument("--first-id", type=int, default=1000)
            q.add_argument("--gap", type=float, default=0.0, help="seconds between packets")
            q.set_defaults(fn=cmd_send)
        else:
            q.add_argument("--block", required=True, help="LO-HI: this host's SPI block")
            q.add_argument("--expect", type=int, required=True)
            q.add_argument("--timeout", type=float, default=10)
            q.add_argument("--linger", type=float, default=0.5)
            q.set_defaults(fn=cmd_recv)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
