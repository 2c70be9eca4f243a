#!/usr/bin/env bash
# make demo: the whole orderseal checkout across real processes on loopback.
# A fresh key center issues keys; vault, issuer, carrier and merchant start on
# free ports; Alice's card is enrolled and her address registered; she orders;
# the status timeline, the label, the capture on shipment and a partial
# refund with her available credit before and after, and a "who saw what" table drawn from every
# party's own database and logs follow. DEMO_DIR keeps the files. With
# KEEP=1 (make demo KEEP=1) the daemons stay up afterwards, until Ctrl-C,
# with the browser checkout and the merchant dashboard to try.
# DEMO_DB=postgres (make demo-postgres) runs every store on a throwaway
# PostgreSQL cluster (scripts/demo-postgres.sh) and the merchant as three
# nodes sharing one database; the default is SQLite files, one node each.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
SCRIPTS=$PWD/scripts

DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/orderseal-demo.XXXXXX")}
mkdir -p "$DEMO_DIR"
if [ -e "$DEMO_DIR/center/params.json" ]; then
  echo "demo: $DEMO_DIR already holds a key center; choose an empty DEMO_DIR" >&2
  exit 1
fi
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
echo "demo: working in $DEMO_DIR (kept afterwards)"

# The key center's three officers and their passphrases, for this demo
# only; production prompts each officer at the terminal.
OFFICERS=(ada ben cy)
declare -A OFFICER_PASS
for o in "${OFFICERS[@]}"; do OFFICER_PASS[$o]="demo-$o-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done
# officers NAME…: the passphrases of the officers present, one "name=passphrase" a line.
officers() { for o in "$@"; do printf '%s=%s\n' "$o" "${OFFICER_PASS[$o]}"; done; }

ALICE=cardholder:alice@example.org
MERCHANT=merchant:shop.example
ISSUER=issuer:bank.example
CARRIER=carrier:parcel.example
VAULT=vault:vault.shop.example
CAROL=consultant:carol
CALLCENTER=company:callcenter.example
DORA=cardholder:dora@example.org
DORA_CARD=4012888888881881
K=${DEMO_K:-1024}
CARD=4111111111111111
STREET=Musterstra

DEMO_DB=${DEMO_DB:-sqlite}
case $DEMO_DB in sqlite|postgres) ;; *) echo "demo: DEMO_DB=$DEMO_DB: want sqlite or postgres" >&2; exit 2 ;; esac

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: FAIL: $*" >&2; exit 1; }
key() { echo "$DEMO_DIR/keys/$(echo "$1" | sed 's/:/./').key"; }
# store ID: the keystore of a receiving party (one folder an epoch, DESIGN.md §2.1).
store() { echo "$DEMO_DIR/keystores/$(echo "$1" | sed 's/:/./')"; }

PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap stop_all EXIT

# Where each party's store is: SQLite files in its directory, or PostgreSQL
# databases (pg_start sets the DSNs) with the merchant on three nodes.
MERCHANT_DB=$DEMO_DIR/merchant/merchant.db ISSUER_DB=$DEMO_DIR/issuer/issuer.db CARRIER_DB=$DEMO_DIR/carrier/carrier.db
VAULT_INDEX=$DEMO_DIR/vault/index.db VAULT_DATA=$DEMO_DIR/vault/data/data.db VAULT_BACKUP=$DEMO_DIR/vault/backup/data.db
VAULT_PENDING=()
NODES=(merchant)
if [ "$DEMO_DB" = postgres ]; then
  # shellcheck source=scripts/demo-postgres.sh
  . "$SCRIPTS/demo-postgres.sh"
  trap 'stop_all; pg_stop' EXIT
  step "PostgreSQL: a throwaway cluster for every party's store"
  pg_start
  VAULT_PENDING=(-pending "$DEMO_DIR/vault/pending.db")
  NODES=(merchant merchant-2 merchant-3)
fi

# start NAME CMD…: run a daemon with its log in $DEMO_DIR/NAME/NAME.log and
# wait for the address it writes to $DEMO_DIR/NAME/addr ($LISTEN, default a
# free port, is where it listens).
start() {
  local name=$1; shift
  "$@" -listen "${LISTEN:-127.0.0.1:0}" -addr-file "$DEMO_DIR/$name/addr" 2>> "$DEMO_DIR/$name/$name.log" &
  PIDS+=($!)
  for _ in $(seq 150); do [ -s "$DEMO_DIR/$name/addr" ] && break; sleep 0.1; done
  [ -s "$DEMO_DIR/$name/addr" ] || { cat "$DEMO_DIR/$name/$name.log" >&2; fail "$name did not start"; }
  printf '  %-9s http://%s\n' "$name" "$(cat "$DEMO_DIR/$name/addr")"
}
url() { echo "http://$(cat "$DEMO_DIR/$1/addr")"; }

step "key center: suite OS2, its master split 2-of-3 among officers ${OFFICERS[*]} (k=$K per epoch matrix)"
ORDERSEAL_OFFICER_PASSPHRASES=$(officers "${OFFICERS[@]}") \
  "$BIN/keygen" init -dir "$DEMO_DIR/center" -k "$K" -officers "$(IFS=,; echo "${OFFICERS[*]}")" -threshold 2 2>&1 | sed 's/^/  /'
mkdir -p "$DEMO_DIR/keys" "$DEMO_DIR/keystores" "$DEMO_DIR/vault/data" "$DEMO_DIR/vault/backup" "$DEMO_DIR/issuer" "$DEMO_DIR/carrier" "${NODES[@]/#/$DEMO_DIR/}" "$DEMO_DIR/alice" \
  "$DEMO_DIR/consultant/work" "$DEMO_DIR/consultant/tmp" "$DEMO_DIR/consultant/home"
printf '%s\n' "$ALICE" "$MERCHANT" "$ISSUER" "$CARRIER" "$VAULT" "$CAROL" "$CALLCENTER" > "$DEMO_DIR/identities.txt"

step "key center: one officer alone cannot issue; two of three can (each issuance goes into the hash-chained ledger)"
if ORDERSEAL_OFFICER_PASSPHRASES=$(officers ada) "$BIN/keygen" issue -dir "$DEMO_DIR/center" -ids "$DEMO_DIR/identities.txt" \
    -out-dir "$DEMO_DIR/keys" -officers ada 2> "$DEMO_DIR/one-officer.err"; then
  fail "one officer issued keys"
fi
sed 's/^/  ada alone: /' "$DEMO_DIR/one-officer.err" | head -1
ORDERSEAL_OFFICER_PASSPHRASES=$(officers ada cy) "$BIN/keygen" issue -dir "$DEMO_DIR/center" -ids "$DEMO_DIR/identities.txt" \
  -out-dir "$DEMO_DIR/keys" -officers ada,cy 2>&1 | tr '\r' '\n' | grep -v '^$' | tail -2 | sed 's/^/  ada and cy: /'

step "receiving parties: each makes its own X-Wing key pair for the epoch; the officers sign it into the directory"
for id in "$MERCHANT" "$ISSUER" "$CARRIER" "$VAULT"; do
  case $id in merchant:*|vault:*) bin=(merchant); [ "${id%%:*}" = vault ] && bin=(merchant vault) ;; *) bin=("${id%%:*}") ;; esac
  "$BIN/${bin[0]}" "${bin[@]:1}" keys new-epoch -keys "$(store "$id")" -key "$(key "$id")" 2>/dev/null > "$DEMO_DIR/request.json"
  ORDERSEAL_OFFICER_PASSPHRASES=$(officers ben cy) "$BIN/keygen" directory sign -dir "$DEMO_DIR/center" -officers ben,cy \
    -request "$DEMO_DIR/request.json" -out "$(store "$id")/entry.json" 2>/dev/null
  "$BIN/${bin[0]}" "${bin[@]:1}" keys entry -keys "$(store "$id")" -entry "$(store "$id")/entry.json" 2>&1 | sed 's/^/  /'
done
"$BIN/keygen" ledger verify -dir "$DEMO_DIR/center" | sed 's/^/  /'
printf '  %-34s %s\n' "$ALICE → $ISSUER" "$("$BIN/keygen" fingerprint -key "$(key "$ALICE")" -peer "$ISSUER")"
printf '  %-34s %s\n' "$ISSUER → $ALICE" "$("$BIN/keygen" fingerprint -key "$(key "$ISSUER")" -peer "$ALICE")"

step "start vault, issuer, carrier and merchant on free loopback ports"
"$BIN/merchant" vault init -data-key "$DEMO_DIR/vault/data.key" 2>/dev/null
vault_args=(-key "$(store "$VAULT")" -index "$VAULT_INDEX" -data "$VAULT_DATA" -backup "$VAULT_BACKUP" "${VAULT_PENDING[@]}"
  -data-key "$DEMO_DIR/vault/data.key")
start vault "$BIN/merchant" vault serve "${vault_args[@]}"
VAULT_PID=${PIDS[-1]}
"$BIN/issuer" init -card-key "$DEMO_DIR/issuer/card.key" 2>/dev/null
start issuer "$BIN/issuer" serve -key "$(store "$ISSUER")" -db "$ISSUER_DB" -card-key "$DEMO_DIR/issuer/card.key"
# The carrier sends tracking events only where its configuration names each
# merchant (-merchant ID=URL), never where a booking asks; the merchant's
# port is known once it runs, so the carrier is started on its port again
# with it.
carrier_args=(-key "$(store "$CARRIER")" -db "$CARRIER_DB" -vault-url "$(url vault)" -vault "$VAULT")
start carrier "$BIN/carrier" serve "${carrier_args[@]}" -merchant "$MERCHANT=http://127.0.0.1:9"
CARRIER_PID=${PIDS[-1]}
# The shop's own ship-from and return address: printed on every label, its
# country the S10 country of the tracking numbers; parcels to KR and JP are
# imports there (customs declaration CN22).
printf '{"name":"Shop Example GmbH","line1":"Lagerstra\u00dfe 1","city":"Hamburg","postal_code":"20095","country":"DE"}\n' > "$DEMO_DIR/merchant/ship-from.json"
# On PostgreSQL the merchant runs as three nodes on one database: any node
# takes an order, any node relays it (each claims due relay jobs under a
# lease, FOR UPDATE SKIP LOCKED), and every node answers the same status.
for node in "${NODES[@]}"; do
  start "$node" "$BIN/merchant" serve -key "$(store "$MERCHANT")" -db "$MERCHANT_DB" \
    -catalog "$SCRIPTS/demo-catalog.json" -issuer "$ISSUER=$(url issuer)" -carrier "$CARRIER=$(url carrier)" \
    -vault "$VAULT=$(url vault)" -relay-poll 200ms -company "$CALLCENTER" \
    -ship-from "$DEMO_DIR/merchant/ship-from.json" -service Paket -service-abroad "International Priority" -item-weight 400 \
    -checkout "$BIN/web" -checkout-vault "$(url vault)"
done
# The checkout page lists Alice's saved addresses at the vault, which answers
# a browser only for the shop origins it is told (-cors-origin): the nodes'
# ports are known now, so the vault is started on its port again with them.
VAULT_ADDR=$(cat "$DEMO_DIR/vault/addr")
kill -TERM "$VAULT_PID"; wait "$VAULT_PID" 2>/dev/null || true
rm -f "$DEMO_DIR/vault/addr"
cors=(); for node in "${NODES[@]}"; do cors+=(-cors-origin "$(url "$node")"); done
LISTEN=$VAULT_ADDR start vault "$BIN/merchant" vault serve "${vault_args[@]}" "${cors[@]}"
CARRIER_ADDR=$(cat "$DEMO_DIR/carrier/addr")
kill -TERM "$CARRIER_PID"; wait "$CARRIER_PID" 2>/dev/null || true
rm -f "$DEMO_DIR/carrier/addr"
# The carrier's tracking events go to the last node: not the one orders are placed at.
LISTEN=$CARRIER_ADDR start carrier "$BIN/carrier" serve "${carrier_args[@]}" -merchant "$MERCHANT=$(url "${NODES[-1]}")"

step "issuer: enroll Alice's card to her identity, limit 500.00 EUR (the number read from stdin, stored encrypted)"
ENROLLED=$(echo "$CARD" | "$BIN/issuer" card add -db "$ISSUER_DB" -card-key "$DEMO_DIR/issuer/card.key" \
  -cardholder "$ALICE" -expiry 2031-12 -limit 500.00 -currency EUR -number-file - 2> >(sed 's/^/  /' >&2))
echo "$ENROLLED" | sed 's/^/  /'
ALICE_CVC=$(echo "$ENROLLED" | sed -n 's/^cvc //p')
[ -n "$ALICE_CVC" ] || fail "the issuer printed no cvc for Alice's card"

step "alice: her card file (0600) and her home address in the vault"
umask 077
printf '{"number":"%s","expiry":"2031-12","cvc":"%s","issuer":"%s"}\n' "$CARD" "$ALICE_CVC" "$ISSUER" > "$DEMO_DIR/alice/card.json"
printf '{"name":"Alice Example","phone":"+4915112345678","email":"a.example@mail.example"}\n' > "$DEMO_DIR/alice/me.json"
printf '{"name":"Alice Example","line1":"%s\u00dfe 12","line2":"Hinterhaus, 3. OG","city":"Berlin","postal_code":"10115","country":"DE"}\n' "$STREET" > "$DEMO_DIR/alice/home.json"
umask 022
ALICE_ARGS=(-key "$(key "$ALICE")")
# The shop runs on a loopback port, not at shop.example: Alice pins its identity.
TOKEN=$("$BIN/cardholder" address add "${ALICE_ARGS[@]}" -vault-url "$(url vault)" -vault "$VAULT" -label home -file "$DEMO_DIR/alice/home.json" 2>/dev/null)
echo "  registered as $TOKEN; the merchant and carrier will only ever hold this token"

step "alice: the merchant's order form"
"$BIN/cardholder" order -merchant "$(url merchant)" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" -list | sed 's/^/  /'

ORDER_BASE=(-merchant "$(url merchant)" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" -card "$DEMO_DIR/alice/card.json" -buyer "$DEMO_DIR/alice/me.json"
  -vault-url "$(url vault)")
ORDER_ARGS=("${ORDER_BASE[@]}" -ship-to home)
step "alice: preview who will see what"
"$BIN/cardholder" order "${ORDER_ARGS[@]}" -item BOOK-1984.pb=2 -item mug_blue-350=1 -preview 2>/dev/null | sed 's/^/  /'

step "alice: order two books and a mug, shipped to 'home'; follow it to a final status"
"$BIN/cardholder" order "${ORDER_ARGS[@]}" -item BOOK-1984.pb=2 -item mug_blue-350=1 > "$DEMO_DIR/alice/order.out" \
  2> >(sed 's/^/  /' >&2) || fail "the order did not ship"
ORDER_ID=$(head -1 "$DEMO_DIR/alice/order.out")
read -r _ STATE TRACKING < <(tail -1 "$DEMO_DIR/alice/order.out")
[ "$STATE" = shipped ] || fail "order $ORDER_ID is $STATE, not shipped"
echo "  => $ORDER_ID shipped, tracking $TRACKING"

step "carrier: print the label (the address is revealed through the grant, rendered, and stored nowhere)"
"$BIN/carrier" label "$TRACKING" -o "$DEMO_DIR/label.png" -db "$CARRIER_DB" \
  -key "$(store "$CARRIER")" -vault-url "$(url vault)" -vault "$VAULT" 2>&1 | sed 's/^/  /'
[ -s "$DEMO_DIR/label.png" ] || fail "no label written"
echo "  label image: $DEMO_DIR/label.png"

# order_abroad LABEL ADDRESS_JSON NAME PHONE OUT [extra order flags]: Alice
# registers a friend's address, orders a book shipped there under the
# destination's section policy, and the carrier prints its label to OUT.
order_abroad() {
  local label=$1 addr=$2 name=$3 phone=$4 out=$5; shift 5
  printf '%s\n' "$addr" > "$DEMO_DIR/alice/$label.json"
  "$BIN/cardholder" address add "${ALICE_ARGS[@]}" -vault-url "$(url vault)" -vault "$VAULT" -label "$label" \
    -file "$DEMO_DIR/alice/$label.json" > /dev/null 2>&1 || fail "the $label address was refused"
  "$BIN/cardholder" order "${ORDER_BASE[@]}" -ship-to "$label" -item BOOK-1984.pb=1 -recipient-name "$name" -recipient-phone "$phone" \
    -gift-note "Happy birthday!" "$@" > "$DEMO_DIR/alice/$label.out" 2> >(sed 's/^/  /' >&2) || fail "the order to $label did not ship"
  local id st tr
  id=$(head -1 "$DEMO_DIR/alice/$label.out")
  read -r _ st tr < <(tail -1 "$DEMO_DIR/alice/$label.out")
  [ "$st" = shipped ] || fail "order $id to $label is $st, not shipped"
  "$BIN/carrier" label "$tr" -o "$out" -db "$CARRIER_DB" \
    -key "$(store "$CARRIER")" -vault-url "$(url vault)" -vault "$VAULT" 2>&1 | sed 's/^/  /'
  [ -s "$out" ] || fail "no label written for $label"
  echo "  => $id shipped, tracking $tr; label image: $out"
}

step "alice: a book for Minsu in Seoul (policy kr-…: the carrier gets his phone and, on an import, his customs code); its label in Hangul"
order_abroad seoul '{"name":"김민수","line1":"테헤란로 152","line2":"강남파이낸스센터 4층","city":"강남구","region":"서울","postal_code":"06236","country":"KR"}' \
  "김민수" "+82 10-1234-5678" "$DEMO_DIR/label-kr.png" -customs-code P123456789012

step "alice: a book for Taro in Tokyo (policy jp-…); its label in the Japanese order, 〒 first"
order_abroad tokyo '{"name":"山田太郎","line1":"千代田1-1","line2":"皇居ビル3階","city":"千代田区","region":"東京都","postal_code":"100-0001","country":"JP"}' \
  "山田太郎" "+81 90-1234-5678" "$DEMO_DIR/label-jp.png"

# available: Alice's available credit at the issuer, in minor units.
available() {
  "$BIN/issuer" card list -db "$ISSUER_DB" -json | tr -d ' \n' | tr '{' '\n' | grep "\"cardholder\":\"$ALICE\"" | head -1 |
    sed -n 's/.*"available":\([0-9]*\).*/\1/p'
}
# wait_payment STATE: until the merchant records the issuer's word that the order's payment is STATE.
wait_payment() {
  local p=""
  for _ in $(seq 200); do
    p=$("$BIN/cardholder" status "$ORDER_ID" -merchant "$(url merchant)" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" -json |
      sed -n 's/.*"payment":{"state":"\([a-z-]*\)".*/\1/p')
    [ "$p" = "$1" ] && return 0; sleep 0.1
  done
  fail "the payment of $ORDER_ID is '$p', not $1"
}
issuer_line() { "$BIN/issuer" authorizations -db "$ISSUER_DB" | awk -v id="$ORDER_ID" 'NR == 1 || $1 == id' | sed 's/^/  /'; }

step "carrier: the parcel is picked up; the merchant captures the payment on the carrier's report"
BEFORE=$(available)
echo "  issuer: Alice's available credit before the capture: $BEFORE (minor units; 34.48 EUR held for $ORDER_ID)"
"$BIN/carrier" event "$TRACKING" -status picked-up -db "$CARRIER_DB" 2>&1 | sed 's/^/  /'
wait_payment captured
AFTER=$(available)
echo "  issuer: available credit after the capture: $AFTER (a capture turns the hold into a charge: unchanged)"
[ "$AFTER" = "$BEFORE" ] || fail "the capture moved the available credit from $BEFORE to $AFTER"
issuer_line

step "carrier: tracking events reach the merchant"
for s in in-transit delivered; do
  "$BIN/carrier" event "$TRACKING" -status "$s" -db "$CARRIER_DB" 2>&1 | sed 's/^/  /'
done
for _ in $(seq 100); do
  st=$("$BIN/cardholder" status "$ORDER_ID" -merchant "$(url merchant)" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" -json | sed -n 's/^{"order_id":"[^"]*","state":"\([a-z-]*\)".*/\1/p' | head -1)
  [ "$st" = delivered ] && break; sleep 0.1
done
[ "$st" = delivered ] || fail "the delivered event did not reach the merchant"

if [ ${#NODES[@]} -gt 1 ]; then
  step "merchant nodes: the order was placed at ${NODES[0]}; every node answers its status alike"
  for node in "${NODES[@]}"; do
    st=$("$BIN/cardholder" status "$ORDER_ID" -merchant "$(url "$node")" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" -json | sed -n 's/^{"order_id":"[^"]*","state":"\([a-z-]*\)".*/\1/p' | head -1)
    printf '  %-11s %s %s\n' "$node" "$ORDER_ID" "$st"
    [ "$st" = delivered ] || fail "$node answers $ORDER_ID $st, not delivered"
  done
  echo "  what each node's log says it did for $ORDER_ID (the relay steps ran where a node claimed their job):"
  for node in "${NODES[@]}"; do
    did=$({ grep -F "\"order\":\"$ORDER_ID\"" "$DEMO_DIR/$node/$node.log" || true; } | sed -n 's/.*"msg":"\([^"]*\)".*/\1/p' | uniq -c | \
      awk '{n=$1; $1=""; sub(/^ /,""); printf "%s%s%s", (NR>1?", ":""), $0, (n>1?" x"n:"")}')
    printf '  %-11s %s\n' "$node" "${did:--}"
  done
fi

step "merchant: Alice returns the mug; a partial refund of 8.50 EUR goes back to her card"
BEFORE=$(available)
echo "  issuer: available credit before the refund: $BEFORE"
"$BIN/merchant" refund -db "$MERCHANT_DB" -key mug-return "$ORDER_ID" 8.50 | sed 's/^/  queued: /'
wait_payment partially-refunded
AFTER=$(available)
echo "  issuer: available credit after the refund:  $AFTER (+$((AFTER - BEFORE)) minor units)"
[ $((AFTER - BEFORE)) = 850 ] || fail "the refund moved the available credit by $((AFTER - BEFORE)), not 850"
if "$BIN/merchant" refund -db "$MERCHANT_DB" "$ORDER_ID" 30.00 2> "$DEMO_DIR/merchant/refund-refused.err"; then
  fail "a refund above what was captured was accepted"
fi
sed 's/^/  a refund of 30.00 more: /' "$DEMO_DIR/merchant/refund-refused.err" | head -1
issuer_line

step "alice: status timeline"
"$BIN/cardholder" status "$ORDER_ID" -merchant "$(url merchant)" -merchant-id "$MERCHANT" "${ALICE_ARGS[@]}" | sed 's/^/  /'

step "alice: an order above her available credit is declined"
if "$BIN/cardholder" order "${ORDER_ARGS[@]}" -item CAMERA-X100=1 > "$DEMO_DIR/alice/declined.out" 2> "$DEMO_DIR/alice/declined.err"; then
  fail "an order above the credit limit was not declined"
fi
sed 's/^/  /' "$DEMO_DIR/alice/declined.err" | tail -2

step "alice: a card file whose CVC is not her card's: the issuer declines it (cvc-mismatch)"
WRONG_CVC=$(printf '%03d' $(( (10#$ALICE_CVC + 1) % 1000 )))
umask 077
printf '{"number":"%s","expiry":"2031-12","cvc":"%s","issuer":"%s"}\n' "$CARD" "$WRONG_CVC" "$ISSUER" > "$DEMO_DIR/alice/card-wrong-cvc.json"
umask 022
WRONG_ARGS=()
for a in "${ORDER_ARGS[@]}"; do [ "$a" = "$DEMO_DIR/alice/card.json" ] && a=$DEMO_DIR/alice/card-wrong-cvc.json; WRONG_ARGS+=("$a"); done
if "$BIN/cardholder" order "${WRONG_ARGS[@]}" -item mug_blue-350=1 > "$DEMO_DIR/alice/wrong-cvc.out" 2> "$DEMO_DIR/alice/wrong-cvc.err"; then
  fail "an order with a wrong CVC was not declined"
fi
grep -q cvc-mismatch "$DEMO_DIR/alice/wrong-cvc.out" "$DEMO_DIR/alice/wrong-cvc.err" || fail "the wrong CVC was not declined cvc-mismatch"
sed 's/^/  /' "$DEMO_DIR/alice/wrong-cvc.err" | tail -2

step "issuer: Alice's card, its limit and what is left of it (amounts in their currency's minor unit, formatted)"
"$BIN/issuer" card list -db "$ISSUER_DB" | sed 's/^/  /'

step "merchant: its own view (tokens, never card numbers or addresses)"
"$BIN/merchant" orders -db "$MERCHANT_DB" | sed 's/^/  /'

step "phone order: Carol, a consultant of $CALLCENTER, logs in on desk-7 with her key and the company's"
# Carol's terminal: its own home (the session file), temp and working directories.
carol() { (cd "$DEMO_DIR/consultant/work" && HOME="$DEMO_DIR/consultant/home" XDG_CONFIG_HOME="$DEMO_DIR/consultant/home/.config" \
  TMPDIR="$DEMO_DIR/consultant/tmp" "$BIN/cardholder" "$@"); }
DORA_CVC=$(echo "$DORA_CARD" | "$BIN/issuer" card add -db "$ISSUER_DB" -card-key "$DEMO_DIR/issuer/card.key" \
  -cardholder "$DORA" -expiry 2031-12 -limit 1000.00 -currency EUR -number-file - 2>/dev/null | sed -n 's/^cvc //p')
[ -n "$DORA_CVC" ] || fail "the issuer printed no cvc for Dora's card"
umask 077
printf '{"name":"Dora Example","phone":"+4915112345679","email":"dora@example.org"}\n' > "$DEMO_DIR/consultant/work/dora.json"
printf '{"name":"Dora Example","line1":"%s\u00dfe 3","city":"Hamburg","postal_code":"20095","country":"DE"}\n' "$STREET" > "$DEMO_DIR/consultant/work/dora-address.json"
umask 022
SESSION=$(carol assisted login -merchant "$(url merchant)" -merchant-id "$MERCHANT" -key "$(key "$CAROL")" -company-key "$(key "$CALLCENTER")" \
  -device desk-7 -shift 8h 2> >(sed 's/^/  /' >&2)) || fail "Carol could not log in"
echo "  session $SESSION: its second identifier is sealed for Carol; the merchant keeps only its hash"

step "phone order: Carol keys in Dora's order; the card is typed (piped here), sealed for the issuer at once, never echoed"
PHONE=(order -assisted -merchant "$(url merchant)" -key "$(key "$CAROL")" -buyer dora.json -item BOOK-1984.pb=1
  -ship-to-address dora-address.json)
printf '%s\n12/31\n%s\n' "$DORA_CARD" "$DORA_CVC" | carol "${PHONE[@]}" -device desk-7 > "$DEMO_DIR/consultant/order.out" \
  2> >(sed 's/^/  /' >&2) || fail "the phone order did not ship"
PHONE_ID=$(head -1 "$DEMO_DIR/consultant/order.out")
echo "  => $(tail -1 "$DEMO_DIR/consultant/order.out")"

step "phone order: the same session file used from another device (desk-9) is refused"
if printf '%s\n12/31\n%s\n' "$DORA_CARD" "$DORA_CVC" | carol "${PHONE[@]}" -device desk-9 > /dev/null 2> "$DEMO_DIR/consultant/refused.err"; then
  fail "an order from another device was accepted"
fi
sed 's/^/  /' "$DEMO_DIR/consultant/refused.err"

step "merchant: audit the phone order, and Carol's sessions"
"$BIN/merchant" audit order -db "$MERCHANT_DB" "$PHONE_ID" | sed 's/^/  /'
"$BIN/merchant" audit consultant -db "$MERCHANT_DB" "$CAROL" | sed 's/^/  /'

step "issuer: its own authorization record names the session, so a disputed charge traces back too"
"$BIN/issuer" authorizations -db "$ISSUER_DB" -session "$SESSION" | sed 's/^/  /'

step "phone order: after logout the session proves nothing"
cp "$DEMO_DIR/consultant/home/.config/orderseal/assisted/consultant.carol.session.json" "$DEMO_DIR/consultant/kept.json"
carol assisted logout -key "$(key "$CAROL")" 2>&1 | sed 's/^/  /'
if printf '%s\n12/31\n%s\n' "$DORA_CARD" "$DORA_CVC" | carol "${PHONE[@]}" -device desk-7 -session "$DEMO_DIR/consultant/kept.json" > /dev/null 2> "$DEMO_DIR/consultant/refused.err"; then
  fail "an order after logout was accepted"
fi
sed 's/^/  /' "$DEMO_DIR/consultant/refused.err"

# The dashboard's account for this demo; its password is printed at the end.
DASH_OPERATOR=demo
DASH_PASS="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$DASH_PASS" | "$BIN/merchant" operator add -db "$MERCHANT_DB" -name "$DASH_OPERATOR" -role admin 2>&1 | sed 's/^/  /'

[ "${KEEP:-}" = 1 ] || stop_all
if [ "$DEMO_DB" = postgres ]; then
  step "PostgreSQL: the vault's index role cannot reach its data database, nor the data role the index"
  pg_refusal
  # Each party's databases, dumped as text, stand for its files in the search below.
  pg_dump_party merchant "$MERCHANT_DB"; pg_dump_party issuer "$ISSUER_DB"; pg_dump_party carrier "$CARRIER_DB"
  pg_dump_party vault "$VAULT_INDEX" "$VAULT_DATA" "$VAULT_BACKUP"
elif [ "${KEEP:-}" != 1 ]; then
  trap - EXIT
fi

step "who saw what: canaries searched in every party's own database files and logs"
files() {
  if [ "$1" = consultant ]; then find "$DEMO_DIR/consultant" -type f ! -name 'dora*.json' | sort; return; fi # all but what Carol typed the address from
  local d=("$DEMO_DIR/$1")
  [ "$1" = merchant ] && d=("${NODES[@]/#/$DEMO_DIR/}")
  find "${d[@]}" -type f \( -name '*.db' -o -name '*.db-wal' -o -name '*.log' -o -name '*.pending*' -o -name '*.sql' \) | sort
}
declare -A CANARY=(
  ["card number"]=$CARD
  ["phone card"]=$DORA_CARD
  ["street address"]=$STREET
  ["buyer e-mail"]=a.example@mail.example
  ["ship-to token"]=$TOKEN
  ["tracking number"]=$TRACKING
  ["order items"]=Nineteen
)
printf '  %-16s %-11s%-11s%-11s%-11s%-11s\n' "" merchant issuer carrier vault consultant
for what in "card number" "phone card" "street address" "buyer e-mail" "order items" "ship-to token" "tracking number"; do
  row=""
  for party in merchant issuer carrier vault consultant; do
    if files "$party" | xargs grep -l -a -F -- "${CANARY[$what]}" > /dev/null 2>&1; then row+=$(printf '%-11s' "in clear"); else row+=$(printf '%-11s' "-"); fi
  done
  printf '  %-16s %s\n' "$what" "$row"
done
for party in merchant issuer carrier vault consultant; do
  for c in "$CARD" "$DORA_CARD" "$STREET"; do
    if files "$party" | xargs grep -l -a -F -- "$c" 2>/dev/null; then fail "$party holds ${c:0:4}… in clear"; fi
  done
done
echo "  card numbers: only encrypted in the issuer's store; addresses: only sealed in the vault's data stores;"
echo "  order items reach the carrier only in the merchant's customs declaration (CN22) of the parcels abroad (KR, JP);"
echo "  the consultant's terminal (home, temp and working directories, session file) holds no card data"
"$BIN/merchant" vault audit verify -index "$VAULT_INDEX" -data-key "$DEMO_DIR/vault/data.key" -backup "$VAULT_BACKUP" | sed 's/^/  vault: /'
if [ "$DEMO_DB" = postgres ] && [ "${KEEP:-}" != 1 ]; then
  pg_stop
  trap - EXIT
  echo "  PostgreSQL: stopped, its cluster removed"
fi

step "done: files kept in $DEMO_DIR; labels at $DEMO_DIR/label.png, label-kr.png, label-jp.png"

if [ "${KEEP:-}" = 1 ]; then
  step "the daemons stay up (KEEP=1) until Ctrl-C"
  echo "  checkout:  $(url merchant)/checkout/   open Alice's key file $(key "$ALICE")"
  echo "             card $CARD, expiry 2031-12 (Alice's enrolled card); ship to any address the form accepts"
  echo "  dashboard: $(url merchant)/dashboard/  log in as $DASH_OPERATOR with password $DASH_PASS (role admin)"
  echo "  more accounts: $BIN/merchant operator add -db $MERCHANT_DB -name NAME -role viewer"
  if [ "$DEMO_DB" = postgres ]; then
    trap 'echo; stop_all; pg_stop; exit 0' INT TERM
  else
    trap 'echo; stop_all; exit 0' INT TERM
  fi
  wait
fi
