package merchant_test

// Fuzz targets for every body the merchant node decodes, each driven through
// the real handler behind web.Limit and the signed-request verifier, by a
// correctly signed request, so the whole path is fuzzed: bundles (intake),
// assisted orders, and the carrier's tracking events. Seeds live in
// testdata/fuzz/<Target>/ (rewrite them with -webtest.write-corpus); the
// bundles in them are sealed at fuzzT0 and the node's clock stands just
// after it, so the genuine seeds are accepted for good.

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"orderseal/assisted"
	carrierapi "orderseal/carrier/api"
	"orderseal/internal/signedhttp"
	"orderseal/internal/wire"
	"orderseal/merchant"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// fuzzT0 is when every genuine fuzz seed was sealed and is signed.
var fuzzT0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func fuzzNow() time.Time { return fuzzT0.Add(time.Minute) }

// Fixed names of the fuzz seeds, so the files stay valid.
const (
	fuzzOrderID    = "ord_fuzzfuzzfuzzfuzzfuzzfuzzaa"
	fuzzInlineID   = "ord_fuzzfuzzfuzzfuzzfuzzfuzzab"
	fuzzAssistedID = "ord_fuzzfuzzfuzzfuzzfuzzfuzzac"
	fuzzSession    = "ses_fuzzfuzzfuzzfuzzfuzzfuzzaa"
	fuzzDevice     = "desk-7"
)

// fuzzSecret is the second identifier of the fuzz session.
var fuzzSecret = bytes.Repeat([]byte{0x5e}, api.SecretSize)

// fuzzNode is a merchant node on a store of its own, its clock at fuzzNow,
// with the test catalog and a live assisted session for carol on desk-7.
type fuzzNode struct {
	h  http.Handler
	st store.Store
}

func newFuzzNode(f *testing.F) *fuzzNode {
	f.Helper()
	ctx := context.Background()
	st, err := merchant.OpenStore(ctx, filepath.Join(f.TempDir(), "merchant.db"), fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	for _, p := range []store.Product{
		{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", UnitPrice: 1299, Currency: "EUR"},
		{SKU: "mug_blue-350", Name: "Blue mug, 350 ml", UnitPrice: 850, Currency: "EUR"},
	} {
		if err := st.PutProduct(ctx, p); err != nil {
			f.Fatal(err)
		}
	}
	hash := assisted.SecretHash(fuzzSecret)
	if _, err := st.StartSession(ctx, &store.Session{ID: fuzzSession, Consultant: keys.Carol, Company: keys.CallCenter,
		Device: fuzzDevice, DeviceKey: fuzzDevicePub(f), SecretHash: hash[:], LoginNonce: "fuzz-login", Created: fuzzT0, Expires: fuzzT0.Add(8 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	const nowhere = "http://127.0.0.1:9" // the runner never starts: no peer is called
	srv, err := merchant.NewServer(merchant.Config{
		Keys: keys.Keys(f, keys.Shop), Store: st, PublicURL: nowhere,
		Carrier: merchant.Peer{Identity: keys.Parcel, URL: nowhere}, Issuers: []merchant.Peer{{Identity: keys.Bank, URL: nowhere}},
		Vault: merchant.Peer{Identity: keys.Vault, URL: nowhere}, Companies: []string{keys.CallCenter}, MaxShift: 8 * time.Hour,
		Now:      fuzzNow,
		Verifier: []signedhttp.Option{signedhttp.WithClock(fuzzNow), signedhttp.WithNonceStore(webtest.NeverSeen{})},
	})
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzNode{h: srv.Handler(), st: st}
}

// caller signs requests to the node as id, dated fuzzNow.
func (n *fuzzNode) caller(t testing.TB, id string) func(t testing.TB, path string, body []byte) *signedhttp.Response {
	c := signedhttp.NewClient(keys.Keys(t, id), webtest.Client(n.h), signedhttp.WithClientClock(fuzzNow))
	return func(t testing.TB, path string, body []byte) *signedhttp.Response {
		t.Helper()
		resp, err := c.Do(context.Background(), keys.Shop, http.MethodPost, "http://merchant.fuzz"+path, body)
		if err != nil {
			t.Fatalf("an answer to a signed request does not verify: %v", err)
		}
		webtest.CheckAnswer(t, resp)
		return resp
	}
}

// fuzzSeal seals o as owner at fuzzT0 with randomness from seed, so the
// same seed file comes out every time.
func fuzzSeal(t testing.TB, owner string, o *order.Order, p order.Parties, id, session string, seed uint64) *order.Bundle {
	t.Helper()
	var s [32]byte
	s[0] = byte(seed)
	return seal(t, owner, o, p, order.SealOptions{Now: fuzzT0, OrderID: id, Session: session, Rand: rand.NewChaCha8(s)})
}

// intakeSeeds are the genuine bundles and a few refusals the node must
// answer with a problem.
func intakeSeeds(f *testing.F) map[string][]byte {
	f.Helper()
	b := fuzzSeal(f, keys.Alice, testOrder(f, testToken), stdParties, fuzzOrderID, "", 1)
	inline := testOrder(f, "")
	inline.ShipTo.Address = &order.Address{Name: "Bob Beispiel", Line1: "Fuzzweg 1", City: "Berlin", PostalCode: "10115", Country: "DE"}
	bi := fuzzSeal(f, keys.Alice, inline, order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel}, fuzzInlineID, "", 2)
	other := fuzzSeal(f, keys.Alice, testOrder(f, testToken), order.Parties{Merchant: keys.OtherShop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: keys.Vault}, "", "", 3)
	return map[string][]byte{
		"token":          marshal(f, b),
		"inline-address": marshal(f, bi),
		"other-merchant": marshal(f, other),
		"relayed-issuer": func() []byte {
			r, err := b.ForRole(order.RoleIssuer)
			if err != nil {
				f.Fatal(err)
			}
			return marshal(f, r)
		}(),
		"edited-header": editJSON(f, marshal(f, b), func(m map[string]any) { m["created"] = "2026-01-15T12:00:01Z" }),
	}
}

// FuzzIntake: no bundle makes the intake panic or answer anything but a
// signed 202 or problem; what it accepts re-encodes to the same bundle.
func FuzzIntake(f *testing.F) {
	n := newFuzzNode(f)
	for name, s := range intakeSeeds(f) {
		webtest.WriteCorpus(f, name, s)
	}
	post := n.caller(f, keys.Alice)
	webtest.MustAccept(f, webtest.Corpus(f), func(body []byte) int { return post(f, api.PathOrders, body).Status })
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, api.PathOrders, body)
		if resp.Status != http.StatusAccepted {
			return
		}
		b := webtest.BundleRoundTrip(t, body)
		var acc api.Accepted
		if err := json.Unmarshal(resp.Body, &acc); err != nil || acc.OrderID != b.OrderID {
			t.Fatalf("accepted as %s (%v), bundle %s", resp.Body, err, b.OrderID)
		}
	})
}

func fuzzDevicePub(f testing.TB) []byte {
	p := deviceKey(f, fuzzDevice).Public()
	return p[:]
}

// FuzzAssistedIntake: the same for orders keyed in an assisted session,
// whose body also carries the session, the device and the proof.
func FuzzAssistedIntake(f *testing.F) {
	n := newFuzzNode(f)
	b := fuzzSeal(f, keys.Carol, phoneOrder(f), phoneParties, fuzzAssistedID, fuzzSession, 4)
	proof, err := assisted.Prove(keys.Keys(f, keys.Carol), keys.Shop, fuzzSession, fuzzDevice, fuzzSecret, b.HeaderHash())
	if err != nil {
		f.Fatal(err)
	}
	body := func(o api.AssistedOrder) []byte {
		out, err := json.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	genuine := api.AssistedOrder{Bundle: marshal(f, b), Session: fuzzSession, Device: fuzzDevice, Proof: proof,
		DeviceSignature: wire.B64(deviceSig(f, b, fuzzSession, fuzzDevice, proof))}
	otherDevice, noProof, otherKey := genuine, genuine, genuine
	otherKey.DeviceSignature = wire.B64(deviceKey(f, "thief").SignOrder(keys.Shop, keys.Carol, fuzzSession, fuzzDevice, b.HeaderHash(), proof))
	webtest.WriteCorpus(f, "other-device-key", body(otherKey))
	otherDevice.Device = "desk-8"
	noProof.Proof = api.Sealed{}
	webtest.WriteCorpus(f, "genuine", body(genuine))
	webtest.WriteCorpus(f, "other-device", body(otherDevice))
	webtest.WriteCorpus(f, "no-proof", body(noProof))
	post := n.caller(f, keys.Carol)
	webtest.MustAccept(f, webtest.Corpus(f), func(body []byte) int { return post(f, api.PathAssistedOrders, body).Status })
	f.Fuzz(func(t *testing.T, body []byte) {
		if post(t, api.PathAssistedOrders, body).Status != http.StatusAccepted {
			return
		}
		var o api.AssistedOrder
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatalf("accepted an assisted order that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &o, api.MaxAssistedBody)
		if again.Session != fuzzSession || again.Device != fuzzDevice {
			t.Fatalf("accepted for session %q device %q", again.Session, again.Device)
		}
		webtest.BundleRoundTrip(t, again.Bundle)
	})
}

// FuzzCarrierEvent: no tracking event makes the events route panic or
// answer anything but a signed 200 or problem; what it records re-encodes
// to the same event.
func FuzzCarrierEvent(f *testing.F) {
	n := newFuzzNode(f)
	// The order the events are about, taken at the intake.
	seeds := intakeSeeds(f)
	if resp := n.caller(f, keys.Alice)(f, api.PathOrders, seeds["token"]); resp.Status != http.StatusAccepted {
		f.Fatalf("the order the events are about was refused: %d %s", resp.Status, resp.Body)
	}
	at := fuzzT0.Add(time.Hour).Format(time.RFC3339)
	for name, ev := range map[string]carrierapi.TrackingEvent{
		"in-transit": {OrderID: fuzzOrderID, Tracking: trackingNumber, Seq: 1, Status: carrierapi.StatusInTransit, At: at, Note: "left the depot"},
		"delivered":  {OrderID: fuzzOrderID, Tracking: trackingNumber, Seq: 2, Status: carrierapi.StatusDelivered, At: at},
		"bad-time":   {OrderID: fuzzOrderID, Tracking: trackingNumber, Seq: 3, Status: carrierapi.StatusException, At: "yesterday"},
		"other":      {OrderID: "ord_other", Tracking: trackingNumber, Seq: 1, Status: carrierapi.StatusInTransit, At: at},
	} {
		out, err := json.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		webtest.WriteCorpus(f, name, out)
	}
	path := api.PathOrder + fuzzOrderID + api.EventsSuffix
	post := n.caller(f, keys.Parcel)
	webtest.MustAccept(f, webtest.Corpus(f), func(body []byte) int { return post(f, path, body).Status })
	f.Fuzz(func(t *testing.T, body []byte) {
		if post(t, path, body).Status != http.StatusOK {
			return
		}
		var ev carrierapi.TrackingEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("accepted an event that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &ev, 4<<10)
		if again.OrderID != fuzzOrderID {
			t.Fatalf("accepted an event for %q on %s", again.OrderID, fuzzOrderID)
		}
		if _, err := time.Parse(time.RFC3339, again.At); err != nil {
			t.Fatalf("accepted an event at %q", again.At)
		}
	})
}
