#!/usr/bin/env bash
# make demo: the whole orderseal flow that exists today, offline, end to end.
# A fresh key center issues keys; Alice seals an order; each party opens only
# its own section; the table shows who saw what. DEMO_DIR keeps the files.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin

DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/orderseal-demo.XXXXXX")}
mkdir -p "$DEMO_DIR"
if [ -e "$DEMO_DIR/center/master.json" ]; then
  echo "demo: $DEMO_DIR already holds a key center; choose an empty DEMO_DIR" >&2
  exit 1
fi
echo "demo: working in $DEMO_DIR (kept afterwards)"

# The key center's passphrase for this demo only; production prompts for it.
export ORDERSEAL_CENTER_PASSPHRASE="demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

ALICE=cardholder:alice@example.org
MERCHANT=merchant:shop.example
ISSUER=issuer:bank.example
CARRIER=carrier:parcel.example
K=${DEMO_K:-1024}

step() { printf '\n== %s\n' "$*"; }

step "key center: init (k=$K: a coalition of $K parties could rebuild the master)"
"$BIN/keygen" init -dir "$DEMO_DIR/center" -k "$K"
"$BIN/keygen" params -dir "$DEMO_DIR/center" > "$DEMO_DIR/params.json"
cat "$DEMO_DIR/params.json"

step "key center: issue one key per party (files 0600)"
mkdir -p "$DEMO_DIR/keys"
printf '%s\n' "$ALICE" "$MERCHANT" "$ISSUER" "$CARRIER" > "$DEMO_DIR/identities.txt"
"$BIN/keygen" issue -dir "$DEMO_DIR/center" -ids "$DEMO_DIR/identities.txt" -out-dir "$DEMO_DIR/keys"
key() { echo "$DEMO_DIR/keys/$(echo "$1" | sed 's/:/./').key"; }

step "pairwise agreement without contact: both sides print the same fingerprint"
printf '  %-32s %s\n' "$ALICE → $ISSUER" "$("$BIN/keygen" fingerprint -key "$(key "$ALICE")" -peer "$ISSUER")"
printf '  %-32s %s\n' "$ISSUER → $ALICE" "$("$BIN/keygen" fingerprint -key "$(key "$ISSUER")" -peer "$ALICE")"

step "cardholder: preview of the policy for order/testdata/order.json"
"$BIN/cardholder" preview -order order/testdata/order.json

step "cardholder: seal the order"
"$BIN/cardholder" seal -key "$(key "$ALICE")" -order order/testdata/order.json \
  -merchant "$MERCHANT" -issuer "$ISSUER" -carrier "$CARRIER" > "$DEMO_DIR/bundle.json"
echo "  bundle: $DEMO_DIR/bundle.json ($(wc -c < "$DEMO_DIR/bundle.json") bytes)"
if grep -q -e 4111111111111111 -e Musterstra "$DEMO_DIR/bundle.json"; then
  echo "demo: FAIL: the bundle holds a clear card number or address" >&2; exit 1
fi
echo "  no card number or address in clear in the bundle"

step "each party opens its own section"
for r in merchant issuer carrier; do
  id_var=$(echo "$r" | tr a-z A-Z)
  "$BIN/$r" open -key "$(key "${!id_var}")" < "$DEMO_DIR/bundle.json" > "$DEMO_DIR/$r.section.json"
  "$BIN/$r" open -key "$(key "${!id_var}")" -fields < "$DEMO_DIR/bundle.json" > "$DEMO_DIR/$r.fields"
  echo "  $r: $DEMO_DIR/$r.section.json"
done

step "the merchant relays, but what it can read holds no card and no address"
for r in merchant issuer carrier; do
  for canary in 4111111111111111 Musterstra; do
    if grep -q "$canary" "$DEMO_DIR/$r.section.json"; then echo "  $r section holds: $canary"; fi
  done
done
if "$BIN/issuer" open -key "$(key "$MERCHANT")" < "$DEMO_DIR/bundle.json" > /dev/null 2> "$DEMO_DIR/refused.txt"; then
  echo "demo: FAIL: the merchant's key opened the issuer section" >&2; exit 1
fi
echo "  the merchant's key on the issuer section is refused:"
sed 's/^/    /' "$DEMO_DIR/refused.txt"

step "who saw what (drawn from each party's opened section)"
fields="buyer_name buyer_phone buyer_email items total plan card ship_to_token ship_to recipient gift_note"
printf '  %-14s  %-9s%-9s%-9s\n' field merchant issuer carrier
for f in $fields; do
  row=""
  for r in merchant issuer carrier; do
    if tr ' ' '\n' < "$DEMO_DIR/$r.fields" | grep -qx "$f"; then row+="  ✓      "; else row+="  ·      "; fi
  done
  printf '  %-14s%s\n' "$f" "$row"
done

step "done: files kept in $DEMO_DIR"
