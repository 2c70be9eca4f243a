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
VAULT=vault:vault.shop.example
K=${DEMO_K:-1024}

step() { printf '\n== %s\n' "$*"; }

step "key center: init (k=$K: a coalition of $K parties could rebuild the master)"
"$BIN/keygen" init -dir "$DEMO_DIR/center" -k "$K"
"$BIN/keygen" params -dir "$DEMO_DIR/center" > "$DEMO_DIR/params.json"
cat "$DEMO_DIR/params.json"

step "key center: issue one key per party (files 0600)"
mkdir -p "$DEMO_DIR/keys"
printf '%s\n' "$ALICE" "$MERCHANT" "$ISSUER" "$CARRIER" "$VAULT" > "$DEMO_DIR/identities.txt"
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

step "vault: a separate process with its own databases and data key"
mkdir -p "$DEMO_DIR/vault/data" "$DEMO_DIR/vault/backup"
"$BIN/merchant" vault init -data-key "$DEMO_DIR/vault/data.key"
"$BIN/merchant" vault serve -key "$(key "$VAULT")" -index "$DEMO_DIR/vault/index.db" \
  -data "$DEMO_DIR/vault/data/data.db" -backup "$DEMO_DIR/vault/backup/data.db" \
  -data-key "$DEMO_DIR/vault/data.key" -listen 127.0.0.1:0 -addr-file "$DEMO_DIR/vault/addr" \
  2> "$DEMO_DIR/vault/vault.log" &
VAULT_PID=$!
trap 'kill "$VAULT_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$DEMO_DIR/vault/addr" ] && break; sleep 0.1; done
[ -s "$DEMO_DIR/vault/addr" ] || { echo "demo: FAIL: the vault did not start" >&2; cat "$DEMO_DIR/vault/vault.log" >&2; exit 1; }
VAULT_URL="http://$(cat "$DEMO_DIR/vault/addr")"
echo "  vault listening on $VAULT_URL"
sed -n '/"address"/,/}/p' order/testdata/order.json | sed '1d;$d' | sed '1s/^/{/;$s/$/}/' > "$DEMO_DIR/home.json"
vault_args=(-key "$(key "$ALICE")" -vault-url "$VAULT_URL" -vault "$VAULT")
TOKEN=$("$BIN/cardholder" address add "${vault_args[@]}" -label bob-home -file "$DEMO_DIR/home.json")
echo "  alice registered Bob's address as $TOKEN"
AGAIN=$("$BIN/cardholder" address add "${vault_args[@]}" -label bob-home -file "$DEMO_DIR/home.json" 2>/dev/null)
echo "  registering it again returns the same token: $AGAIN"
"$BIN/cardholder" address list "${vault_args[@]}" | sed 's/^/  /'
sed "s/tok_7Hq2mXc9LpR4vNw8_adr/$TOKEN/" order/testdata/order_token.json > "$DEMO_DIR/order_token.json"
"$BIN/cardholder" seal -key "$(key "$ALICE")" -order "$DEMO_DIR/order_token.json" \
  -merchant "$MERCHANT" -issuer "$ISSUER" -carrier "$CARRIER" -vault "$VAULT" > "$DEMO_DIR/bundle_token.json"
echo "  an order shipped to the token seals a fourth section, for the vault: $DEMO_DIR/bundle_token.json"
"$BIN/carrier" open -key "$(key "$CARRIER")" -fields < "$DEMO_DIR/bundle_token.json" | sed 's/^/  carrier reads: /'
kill -TERM "$VAULT_PID"; wait "$VAULT_PID" || true; trap - EXIT
"$BIN/merchant" vault audit verify -index "$DEMO_DIR/vault/index.db" | sed 's/^/  /'
"$BIN/merchant" vault check -index "$DEMO_DIR/vault/index.db" -data "$DEMO_DIR/vault/data/data.db" \
  -backup "$DEMO_DIR/vault/backup/data.db" -data-key "$DEMO_DIR/vault/data.key" 2>&1 | sed 's/^/  /'
for f in "$DEMO_DIR/vault/index.db" "$DEMO_DIR/vault/vault.log" "$DEMO_DIR/vault/data/data.db"; do
  if grep -q Musterstra "$f"; then echo "demo: FAIL: $f holds the address in clear" >&2; exit 1; fi
done
echo "  the address is in clear in none of: index.db, data.db, vault.log"

step "done: files kept in $DEMO_DIR"
