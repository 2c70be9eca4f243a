package store

import (
	"encoding/json"
	"testing"

	"orderseal/carrier/api"
)

// FuzzParseDelivery: an outbox payload either decodes into a complete
// delivery that encodes back to the same delivery, or is refused; nothing
// panics.
func FuzzParseDelivery(f *testing.F) {
	good, err := json.Marshal(deliveryJob{Merchant: "merchant:shop.example", EventsURL: "http://127.0.0.1/e",
		Event: api.TrackingEvent{OrderID: "o", Tracking: "OS123456785DE", Seq: 1, Status: "picked-up", At: "2030-01-01T00:00:00Z"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{good, []byte(`{}`), []byte(`{"event":{"seq":-1}}`), []byte(`[`), nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := ParseDelivery(payload)
		if err != nil {
			return
		}
		if d.Merchant == "" || d.EventsURL == "" || d.Event.Tracking == "" || d.Event.Seq < 1 {
			t.Fatalf("incomplete delivery accepted: %+v", d)
		}
		again, err := json.Marshal(deliveryJob(d))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDelivery(again)
		if err != nil || d2 != d {
			t.Fatalf("round trip: %+v → %+v (%v)", d, d2, err)
		}
	})
}
