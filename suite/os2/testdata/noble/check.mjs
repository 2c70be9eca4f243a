// Independent check of orderseal's OS2 vectors with @noble (no orderseal code): PROTOCOL.md §21.
// Usage, from this directory: npm install && node check.mjs ../../../..
import { bls12_381 as bls } from '@noble/curves/bls12-381.js';
import { expand_message_xmd } from '@noble/curves/abstract/hash-to-curve.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768_x25519 as xwing } from '@noble/post-quantum/hybrid.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import fs from 'fs';
const root = process.argv[2];
const kat = JSON.parse(fs.readFileSync(root + '/suite/os2/testdata/os2_kat.json'));
const vec = JSON.parse(fs.readFileSync(root + '/order/testdata/bundle_os2.json'));
const hex = (b) => Buffer.from(b).toString('hex');
const un = (h) => Uint8Array.from(Buffer.from(h, 'hex'));
const b64 = (s) => Uint8Array.from(Buffer.from(s, 'base64url'));
const utf8 = (s) => new TextEncoder().encode(s);
const cat = (...a) => { const o = new Uint8Array(a.reduce((n, x) => n + x.length, 0)); let i = 0; for (const x of a) { o.set(x, i); i += x.length; } return o; };
const lp = (n, b) => { const o = new Uint8Array(n + b.length); let l = b.length; for (let i = n - 1; i >= 0; i--) { o[i] = l & 255; l >>= 8; } o.set(b, n); return o; };
const lp16 = (b) => lp(2, typeof b === 'string' ? utf8(b) : b), lp32 = (b) => lp(4, typeof b === 'string' ? utf8(b) : b);
let fails = 0, checks = 0;
const ok = (c, what) => { checks++; if (!c) { fails++; console.log('FAIL', what); } };
const P25519 = 2n ** 255n - 19n;
const leInt = (b) => BigInt('0x' + (hex(Uint8Array.from(b).reverse()) || '0'));
const leHex = (x) => hex(un(x.toString(16).padStart(64, '0')).reverse());
const fp = bls.fields.Fp12;
const be = (x) => x.toString(16).padStart(96, '0');
const gt = (f) => [f.c1, f.c0].map(f6 => [f6.c2, f6.c1, f6.c0].map(f2 => be(f2.c1) + be(f2.c0)).join('')).join('');
const G1 = bls.G1.Point, G2 = bls.G2.Point;
const xid = (sys, id, epoch) => {
  const u = expand_message_xmd(cat(lp16(id), lp16(epoch)), 'orderseal-v2-id:' + sys, 48, sha256);
  const x = BigInt('0x' + hex(u)) % P25519; return x;
};
const K_ = (sys, blom, g, epoch, lo, hi) => hkdf(sha256, cat(blom, g), sys, cat(lp16('orderseal-v2-pairwise'), lp16(epoch), lp16(lo), lp16(hi)), 32);
const rowOf = (keyfile) => { const r = b64(keyfile.row); const out = []; for (let i = 0; i < r.length; i += 32) out.push(leInt(r.slice(i, i + 32))); return out; };
const blomS = (row, x) => { let s = 0n, p = 1n; for (const r of row) { s = (s + r * p) % P25519; p = p * x % P25519; } return un(leHex(s)); };

// ---- KAT ----
const sys = kat.inputs.system, epoch = kat.inputs.epoch;
const s = BigInt('0x' + hex(shake256(cat(lp16('orderseal-v2-master-sok'), un(kat.inputs.root_seed)), { dkLen: 64 }))) % bls.fields.Fr.ORDER;
ok(s.toString(16).padStart(64, '0') === kat.root.sok_scalar_be, 'sok scalar');
const P = G2.BASE.multiply(s);
ok(hex(P.toBytes(true)) === kat.root.sok_public_P, 'P = s·g2');
ok(b64(kat.params.epochs.sok_public).every((v, i) => v === P.toBytes(true)[i]), 'params sok_public');
const dseed = shake256(cat(lp16('orderseal-v2-master-mldsa'), un(kat.inputs.root_seed)), { dkLen: 32 });
const dk = ml_dsa65.keygen(dseed);
ok(hex(dk.publicKey) === hex(b64(kat.params.epochs.directory_key)), 'directory key = ML-DSA-65.KeyGen(seed)');
ok(gt(bls.pairing(G1.BASE, G2.BASE)) === kat.groups.e_g1_g2, 'e(g1,g2) encoding');
const byId = {};
for (const id of kat.identities) {
  byId[id.identity] = id;
  const x = xid(sys, id.identity, epoch);
  ok(leHex(x) === id.x, 'x ' + id.identity);
  const h1 = bls.G1.hashToCurve(cat(lp16(id.identity), lp16(epoch)), { DST: 'orderseal-v2-sok-g1:' + sys });
  const h2 = bls.G2.hashToCurve(cat(lp16(id.identity), lp16(epoch)), { DST: 'orderseal-v2-sok-g2:' + sys });
  ok(hex(h1.toBytes(true)) === id.H1 && hex(h2.toBytes(true)) === id.H2, 'H1/H2 ' + id.identity);
  ok(hex(h1.multiply(s).toBytes(true)) === id.d1 && hex(h2.multiply(s).toBytes(true)) === id.d2, 'd1/d2 ' + id.identity);
  ok(hex(b64(id.key_file.sok)) === id.d1 + id.d2, 'key file sok = d1||d2');
}
for (const p of kat.pairs) {
  const lo = byId[p.lo], hi = byId[p.hi];
  const g1 = gt(bls.pairing(G1.fromHex(lo.d1), G2.fromHex(hi.H2)));
  const g2 = gt(bls.pairing(G1.fromHex(lo.H1), G2.fromHex(hi.d2)));
  ok(g1 === p.g && g2 === p.g, 'g ' + p.lo + ' ' + p.hi);
  const sb = blomS(rowOf(lo.key_file), xid(sys, p.hi, epoch));
  const sb2 = blomS(rowOf(hi.key_file), xid(sys, p.lo, epoch));
  ok(hex(sb) === p.s_blom && hex(sb2) === p.s_blom, 's_blom ' + p.lo + ' ' + p.hi);
  ok(hex(K_(un(sys), sb, un(p.g), epoch, p.lo, p.hi)) === p.K, 'K ' + p.lo + ' ' + p.hi);
}
const d = kat.directory;
const sbytes = cat(utf8('orderseal-v2-directory'), lp16(d.identity), lp16(epoch), lp16(un(d.public_key)), lp16(d.not_after));
ok(hex(sbytes) === d.signed_bytes, 'directory signed bytes');
ok(ml_dsa65.verify(un(d.signature), sbytes, dk.publicKey), 'directory signature (ML-DSA-65, empty context)');
ok(hex(ml_dsa65.sign(sbytes, dk.secretKey, { extraEntropy: false })) === d.signature, 'deterministic signature');
ok(hex(xwing.keygen(un(d.kem_seed)).publicKey) === d.public_key, 'X-Wing keygen(seed)');
const sec = kat.section;
ok(hex(xwing.decapsulate(un(sec.kem_ct), un(d.kem_seed))) === sec.kem_ss, 'X-Wing decapsulation');
const enc = xwing.encapsulate(un(d.public_key), un(sec.encapsulation_seed));
ok(hex(enc.cipherText) === sec.kem_ct && hex(enc.sharedSecret) === sec.kem_ss, 'X-Wing deterministic encapsulation');
ok(hex(hkdf(sha256, un(sec.kem_ss), un(sec.K), cat(lp16('orderseal-v2-section'), lp16(sec.role), lp16(sec.order_id)), 32)) === sec.section_key, 'section key');

// ---- bundle ----
const b = vec.bundle;
const roles = Object.keys(b.parties).sort();
let can = cat(lp32(Uint8Array.of(b.v)), lp32(b.suite), lp32(un(b.system)), lp32(b.epoch), lp32(b.order_id), lp32(b.cardholder), lp32(b.created), lp32(b.expires));
for (const r of roles) can = cat(can, lp32(r), lp32(b.parties[r]), lp32(b64(b.commitments[r])), lp32(b64(b.kems[r])));
ok(hex(can) === vec.canonical_header_hex, 'canonical header');
const hH = sha256(cat(utf8('orderseal-v1-header'), can));
ok(hex(hH) === vec.header_hash_hex, 'hH');
const vsys = b.system, vep = b.epoch, alice = b.cardholder;
for (const r of roles) {
  const id = b.parties[r], key = vec.keys[id], sec = b.sections[r];
  const kemct = b64(sec.kem);
  ok(hex(sha256(kemct)) === hex(b64(b.kems[r])), 'kem hash ' + r);
  const [lo, hi] = alice < id ? [alice, id] : [id, alice];
  // The party's side: it is hi here, g = e(H1(lo), d2(self)).
  const d2 = G2.fromHex(hex(b64(key.sok).slice(48)));
  const h1 = bls.G1.hashToCurve(cat(lp16(lo), lp16(vep)), { DST: 'orderseal-v2-sok-g1:' + vsys });
  const g = un(gt(bls.pairing(h1, d2)));
  const sb = blomS(rowOf(key), xid(vsys, alice, vep));
  const K = K_(un(vsys), sb, g, vep, lo, hi);
  ok(hex(K) === vec.sections[r].K_hex, 'bundle K ' + r);
  const ss = xwing.decapsulate(kemct, un(vec.kem_seeds_hex[id]));
  const sk = hkdf(sha256, ss, K, cat(lp16('orderseal-v2-section'), lp16(r), lp16(b.order_id)), 32);
  ok(hex(sk) === vec.sections[r].section_key_hex, 'bundle section key ' + r);
  const pt = xchacha20poly1305(sk, b64(sec.nonce), cat(hH, utf8(r))).decrypt(b64(sec.ct));
  ok(hex(sha256(cat(utf8('orderseal-v1-commit'), pt))) === hex(b64(b.commitments[r])), 'commitment ' + r);
  ok(JSON.stringify(JSON.parse(new TextDecoder().decode(pt))) === JSON.stringify(vec.sections[r].plaintext), 'plaintext ' + r);
}
console.log(`${checks - fails} passed, ${fails} failed`);
process.exit(fails ? 1 : 0);
