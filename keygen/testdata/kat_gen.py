#!/usr/bin/env python3
"""Independent reference generator for orderseal keygen known-answer vectors.

Written from /work/shared/DESIGN.md sections 2 and 4.1 (and the KAT brief that
restates them), WITHOUT reference to the Go implementation in keygen/*.go.
Python 3 standard library only.

Run from the repository root:

    python3 keygen/testdata/kat_gen.py

It (re)writes keygen/testdata/kat.json next to this script. Output is
deterministic: same script, same bytes.
"""

import base64
import hashlib
import hmac
import json
import os
import sys

# ---------------------------------------------------------------------------
# Field GF(p), p = 2^255 - 19; elements encode as 32 bytes little-endian.
# ---------------------------------------------------------------------------

P = 2**255 - 19


def enc(x):
    """Canonical 32-byte little-endian encoding of a field element."""
    assert 0 <= x < P
    return x.to_bytes(32, "little")


def enc_hex(x):
    return enc(x).hex()


def u32be(n):
    return n.to_bytes(4, "big")


def lp16(b):
    assert len(b) < 1 << 16
    return len(b).to_bytes(2, "big") + b


# ---------------------------------------------------------------------------
# Master matrix D, expanded from a 32-byte seed with SHAKE256.
# ---------------------------------------------------------------------------

MASTER_LABEL = b"orderseal-v1-master"


class Shake256Reader:
    """Sequential reader over SHAKE256(msg). shake_256(msg).digest(n) is a
    prefix of digest(m) for m > n, so we can grow the buffer on demand."""

    def __init__(self, msg, initial):
        self.msg = msg
        self.buf = hashlib.shake_256(msg).digest(initial)
        self.pos = 0

    def read(self, n):
        while self.pos + n > len(self.buf):
            self.buf = hashlib.shake_256(self.msg).digest(2 * len(self.buf) + n)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def master_row_upper(seed, k, a):
    """Returns D[a][a..k-1] (a list of k-a ints) per the spec:
    stream = SHAKE256("orderseal-v1-master" || seed || u32be(k) || u32be(a));
    successive 32-byte chunks, LE, bit 255 cleared, rejected if >= p."""
    msg = MASTER_LABEL + seed + u32be(k) + u32be(a)
    need = k - a
    rd = Shake256Reader(msg, (need + 4) * 32)
    out = []
    while len(out) < need:
        chunk = bytearray(rd.read(32))
        chunk[31] &= 0x7F
        v = int.from_bytes(bytes(chunk), "little")
        if v >= P:
            continue  # reject, read the next 32 bytes
        out.append(v)
    return out


def master_matrix(seed, k):
    D = [[None] * k for _ in range(k)]
    for a in range(k):
        upper = master_row_upper(seed, k, a)
        for i, v in enumerate(upper):
            b = a + i
            D[a][b] = v
            D[b][a] = v
    return D


# ---------------------------------------------------------------------------
# Identity point: RFC 9380 expand_message_xmd(SHA-256), L = 48, BE mod p.
# ---------------------------------------------------------------------------


def i2osp(n, length):
    return n.to_bytes(length, "big")


def expand_message_xmd_sha256(msg, dst, len_in_bytes):
    """RFC 9380 section 5.3.1 with H = SHA-256 (b_in_bytes 32, s_in_bytes 64)."""
    b_in_bytes = 32
    s_in_bytes = 64
    ell = (len_in_bytes + b_in_bytes - 1) // b_in_bytes
    if ell > 255 or len_in_bytes > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: bad lengths")
    dst_prime = dst + i2osp(len(dst), 1)
    z_pad = i2osp(0, s_in_bytes)
    l_i_b_str = i2osp(len_in_bytes, 2)
    msg_prime = z_pad + msg + l_i_b_str + i2osp(0, 1) + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    b = [hashlib.sha256(b0 + i2osp(1, 1) + dst_prime).digest()]
    for i in range(2, ell + 1):
        x = bytes(p ^ q for p, q in zip(b0, b[-1]))
        b.append(hashlib.sha256(x + i2osp(i, 1) + dst_prime).digest())
    return b"".join(b)[:len_in_bytes]


def identity_dst(system):
    return b"orderseal-v1-id:" + system.hex().encode("ascii")


def identity_point(system, ident):
    u = expand_message_xmd_sha256(ident.encode("utf-8"), identity_dst(system), 48)
    x = int.from_bytes(u, "big") % P
    if x == 0:
        raise ValueError("identity point is zero")
    return x


# ---------------------------------------------------------------------------
# Blom rows and raw secrets.
# ---------------------------------------------------------------------------


def row_for(D, x):
    """r_a = sum_b D[a][b] * x^b mod p."""
    k = len(D)
    powers = [1]
    for _ in range(1, k):
        powers.append(powers[-1] * x % P)
    return [sum(D[a][b] * powers[b] for b in range(k)) % P for a in range(k)]


def raw_secret(row, x_peer):
    """s = sum_a row_a * x_peer^a mod p (Horner)."""
    acc = 0
    for coeff in reversed(row):
        acc = (acc * x_peer + coeff) % P
    return acc


# ---------------------------------------------------------------------------
# HKDF-SHA256 (RFC 5869).
# ---------------------------------------------------------------------------


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def pairwise_key(system, s, a_id, b_id):
    a = a_id.encode("utf-8")
    b = b_id.encode("utf-8")
    lo, hi = (a, b) if a < b else (b, a)
    info = lp16(b"orderseal-v1-pairwise") + lp16(lo) + lp16(hi)
    return hkdf_expand(hkdf_extract(system, enc(s)), info, 32)


def section_key(K, role, order_id):
    info = lp16(b"orderseal-v1-section") + lp16(role.encode("utf-8")) + lp16(order_id.encode("utf-8"))
    return hkdf_expand(K, info, 32)


def fingerprint(K):
    fp = hkdf_expand(K, lp16(b"orderseal-v1-fingerprint"), 32)[:15]
    s = base64.b32encode(fp).decode("ascii")[:20]
    return "-".join(s[i:i + 5] for i in range(0, 20, 5))


# ---------------------------------------------------------------------------
# Self-checks of the primitives against published vectors.
# ---------------------------------------------------------------------------


def self_check():
    # RFC 5869 test case 1.
    prk = hkdf_extract(bytes(range(13)), b"\x0b" * 22)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", prk.hex()
    okm = hkdf_expand(prk, bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    ), okm.hex()
    # RFC 9380 appendix K.1 (expand_message_xmd, SHA-256).
    dst = b"QUUX-V01-CS02-with-expander-SHA256-128"
    for msg, n, want in XMD_VECTORS:
        got = expand_message_xmd_sha256(msg, dst, n).hex()
        assert got == want, (msg, n, got)


XMD_VECTORS = [
    (b"", 0x20, "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"),
    (b"abc", 0x20, "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"),
    # len 0x80 exercises ell > 1 (the b_0 XOR b_{i-1} chain), as L = 48 does.
    (
        b"",
        0x80,
        "af84c27ccfd45d41914fdff5df25293e221afc53d8ad2ac06d5e3e29485dadbe"
        "e0d121587713a3e0dd4d5e69e93eb7cd4f5df4cd103e188cf60cb02edc3edf18"
        "eda8576c412b18ffb658e3dd6ec849469b979d444cf7b26911a08e63cf31f9dc"
        "c541708d3491184472c2c29bb749d4286b004ceb5ee6b9a7fa5b646c993f0ced",
    ),
    (
        b"abc",
        0x80,
        "abba86a6129e366fc877aab32fc4ffc70120d8996c88aee2fe4b32d6c7b6437a"
        "647e6c3163d40b76a73cf6a5674ef1d890f95b664ee0afa5359a5c4e07985635"
        "bbecbac65d747d3d2da7ec2b8221b17b0ca9dc8a1ac1c07ea6a1e60583e2cb00"
        "058e77b7b72a298425cd1b941ad4ec65e8afc50303a22c0f99b0509b4c895f40",
    ),
]


# ---------------------------------------------------------------------------
# Vector generation.
# ---------------------------------------------------------------------------

SEED = bytes(range(32))
SYSTEM = bytes(range(0x10, 0x20))
KS = (1, 2, 3, 16, 64)
IDENTITIES = [
    "merchant:shop.example",
    "issuer:bank.example",
    "carrier:parcel.example",
    "cardholder:alice@example.org",
    "cardholder:bob+gifts@example.org",
]
SECTION_ROLE = "issuer"
SECTION_ORDER_ID = "ord-0001"
FULL_ROW_MAX_K = 16  # rows for k > this are given as first 4 + SHA-256


def vectors_for_k(k, xs):
    D = master_matrix(SEED, k)
    # sanity: symmetric
    for a in range(k):
        for b in range(k):
            assert D[a][b] == D[b][a]
    master = {
        "D_row0_first3": [enc_hex(v) for v in D[0][:3]],
        "D_1_2": enc_hex(D[1][2]) if k >= 3 else None,
    }
    rows = {}
    idents = []
    for ident in IDENTITIES:
        r = row_for(D, xs[ident])
        rows[ident] = r
        entry = {"id": ident, "x": enc_hex(xs[ident])}
        if k <= FULL_ROW_MAX_K:
            entry["row"] = [enc_hex(v) for v in r]
        else:
            entry["row_first4"] = [enc_hex(v) for v in r[:4]]
            entry["row_sha256"] = hashlib.sha256(b"".join(enc(v) for v in r)).hexdigest()
        idents.append(entry)
    pairs = []
    for i in range(len(IDENTITIES)):
        for j in range(i + 1, len(IDENTITIES)):
            a, b = IDENTITIES[i], IDENTITIES[j]
            s_ab = raw_secret(rows[a], xs[b])
            s_ba = raw_secret(rows[b], xs[a])
            assert s_ab == s_ba, (k, a, b)
            K = pairwise_key(SYSTEM, s_ab, a, b)
            assert K == pairwise_key(SYSTEM, s_ba, b, a)
            pair = {
                "a": a,
                "b": b,
                "s": enc_hex(s_ab),
                "K": K.hex(),
                "fingerprint": fingerprint(K),
            }
            if a.startswith("cardholder:") or b.startswith("cardholder:"):
                pair["section_issuer_ord-0001"] = section_key(K, SECTION_ROLE, SECTION_ORDER_ID).hex()
            pairs.append(pair)
    return {"k": k, "master": master, "identities": idents, "pairs": pairs}


def main():
    self_check()
    xs = {ident: identity_point(SYSTEM, ident) for ident in IDENTITIES}
    doc = {
        "description": (
            "orderseal keygen known-answer vectors (Blom over GF(2^255-19)), "
            "generated by keygen/testdata/kat_gen.py, an independent Python "
            "reference written from DESIGN.md sections 2 and 4.1, not from the Go code."
        ),
        "generator": "python3 keygen/testdata/kat_gen.py",
        "encoding": {
            "field_element": "hex of 32-byte little-endian canonical encoding (< p)",
            "p": "2^255-19",
            "bytes": "lowercase hex",
        },
        "spec": {
            "master_entry": (
                "row a: SHAKE256('orderseal-v1-master' || seed || u32be(k) || u32be(a)); "
                "for b = a..k-1 read 32-byte chunks, little-endian, bit 255 cleared, "
                "reject >= p; D[a][b] = D[b][a]"
            ),
            "identity_point": (
                "expand_message_xmd(SHA-256, msg = identity UTF-8, "
                "DST = 'orderseal-v1-id:' || lowercase hex(system), len = 48), "
                "big-endian integer mod p"
            ),
            "row": "r_a = sum_b D[a][b] * x^b mod p, a = 0..k-1",
            "raw_secret": "s(A,B) = sum_a r(A)_a * x(B)^a mod p",
            "K": (
                "HKDF-SHA256(salt = system (16 raw bytes), ikm = enc(s), "
                "info = lp16('orderseal-v1-pairwise') || lp16(min(A,B)) || lp16(max(A,B))), L = 32"
            ),
            "section_key": (
                "HKDF-Expand-SHA256(PRK = K, info = lp16('orderseal-v1-section') || "
                "lp16(role) || lp16(order_id)), L = 32"
            ),
            "fingerprint": (
                "HKDF-Expand-SHA256(PRK = K, info = lp16('orderseal-v1-fingerprint'), L = 32)[:15], "
                "RFC 4648 base32 (uppercase), first 20 chars, grouped 5-5-5-5 with '-'"
            ),
            "row_sha256": "for k > 16 rows are given as row_first4 and SHA-256 of r_0 || ... || r_{k-1} (32-byte LE each)",
        },
        "inputs": {
            "seed": SEED.hex(),
            "system": SYSTEM.hex(),
            "identity_dst": identity_dst(SYSTEM).decode("ascii"),
            "ks": list(KS),
            "identities": IDENTITIES,
            "section": {
                "role": SECTION_ROLE,
                "order_id": SECTION_ORDER_ID,
                "field": "section_issuer_ord-0001",
                "only_for": "pairs where at least one side is a cardholder:",
            },
        },
        "vectors": [vectors_for_k(k, xs) for k in KS],
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kat.json")
    data = json.dumps(doc, sort_keys=True, indent=1) + "\n"
    with open(out, "w", encoding="utf-8") as f:
        f.write(data)
    print("wrote %s (%d vector sets, %d bytes)" % (out, len(doc["vectors"]), len(data)), file=sys.stderr)


if __name__ == "__main__":
    main()
