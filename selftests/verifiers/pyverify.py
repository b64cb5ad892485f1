#!/usr/bin/env python3
"""Path validation with Python cryptography's PolicyBuilder (the client
verifier: RFC 5280 path building and name constraints, no host name), for
selftests/e2e_forgery.sh.  Usage: pyverify.py ROOTS.pem LEAF.pem
[INTERMEDIATES.pem].  Exit 0 accepted, 1 rejected (reason printed), 2 this
Python has no PolicyBuilder (cryptography >= 43 needed).  cryptography's
verifier does not check revocation: CRLs are not an input."""
import datetime
import sys

try:
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store
except ImportError as e:  # Debian 12's python3-cryptography 38
    print(f"no cryptography PolicyBuilder in {sys.executable}: {e}")
    sys.exit(2)


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificates(f.read())


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        sys.exit(2)
    roots = load(sys.argv[1])
    try:
        leaf = load(sys.argv[2])[0]
        inter = load(sys.argv[3]) if len(sys.argv) == 4 else []
        verifier = (PolicyBuilder().store(Store(roots))
                    .time(datetime.datetime.now(datetime.timezone.utc))
                    .build_client_verifier())
        verifier.verify(leaf, inter)
    except Exception as e:  # VerificationError, or a certificate it cannot parse
        print(f"rejected: {type(e).__name__}: {e}")
        sys.exit(1)
    print("accepted")


main()
