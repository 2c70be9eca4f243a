package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"orderseal/merchant/store"
)

// storeNow is the fixed clock of open.
var storeNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newSession(id, device, nonce string, expires time.Time) *store.Session {
	return &store.Session{ID: id, Consultant: "consultant:carol", Company: "company:cc", Device: device,
		SecretHash: make([]byte, 32), LoginNonce: nonce, Created: storeNow.Add(-time.Hour), Expires: expires}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
	// An earlier session on desk-7 whose shift is over, one on desk-8 still open.
	for _, s := range []*store.Session{
		newSession("ses_a", "desk-7", "n1", storeNow.Add(-time.Minute)),
		newSession("ses_b", "desk-8", "n2", storeNow.Add(time.Hour)),
	} {
		if _, err := st.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ended, err := st.StartSession(ctx, newSession("ses_c", "desk-7", "n3", storeNow.Add(time.Hour)))
	if err != nil || len(ended) != 1 || ended[0] != "ses_a" {
		t.Fatalf("ended %v, %v", ended, err)
	}
	ended, err = st.StartSession(ctx, newSession("ses_d", "desk-8", "n4", storeNow.Add(time.Hour)))
	if err != nil || len(ended) != 1 || ended[0] != "ses_b" {
		t.Fatalf("ended %v, %v", ended, err)
	}
	if _, err := st.StartSession(ctx, newSession("ses_e", "desk-9", "n4", storeNow.Add(time.Hour))); !errors.Is(err, store.ErrLoginReplayed) {
		t.Fatalf("replayed login nonce: %v", err)
	}
	want := map[string]string{"ses_a": store.EndExpired, "ses_b": store.EndSuperseded, "ses_c": "live", "ses_d": "live"}
	all, err := st.Sessions(ctx, "consultant:carol")
	if err != nil || len(all) != len(want) {
		t.Fatalf("sessions %d, %v", len(all), err)
	}
	for _, s := range all {
		if got := s.State(storeNow); got != want[s.ID] {
			t.Errorf("%s: %s, want %s", s.ID, got, want[s.ID])
		}
	}

	// Orders go in only under a live session of their consultant.
	o := newOrder("ord-1", 1)
	o.Cardholder, o.Session = "consultant:carol", "ses_c"
	if _, _, err := st.Insert(ctx, o, "authorize"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		session, consultant string
		want                error
	}{
		{"ses_a", "consultant:carol", store.ErrSessionEnded},
		{"ses_b", "consultant:carol", store.ErrSessionEnded},
		{"ses_c", "consultant:dave", store.ErrNoSession},
		{"ses_zz", "consultant:carol", store.ErrNoSession},
	} {
		o := newOrder("ord-"+c.session+c.consultant, 2)
		o.Cardholder, o.Session = c.consultant, c.session
		if _, _, err := st.Insert(ctx, o, "authorize"); !errors.Is(err, c.want) {
			t.Errorf("%s by %s: %v, want %v", c.session, c.consultant, err, c.want)
		}
	}
	expiring := newSession("ses_f", "desk-10", "n5", storeNow)
	if _, err := st.StartSession(ctx, expiring); err != nil {
		t.Fatal(err)
	}
	o = newOrder("ord-late", 3)
	o.Cardholder, o.Session = "consultant:carol", "ses_f"
	if _, _, err := st.Insert(ctx, o, "authorize"); !errors.Is(err, store.ErrSessionExpired) {
		t.Fatalf("order at the shift's end: %v", err)
	}

	got, err := st.SessionOrders(ctx, "ses_c")
	if err != nil || len(got) != 1 || got[0].ID != "ord-1" || got[0].Session != "ses_c" {
		t.Fatalf("session orders %v, %v", got, err)
	}

	s1, err := st.EndSession(ctx, "ses_c", store.EndLogout)
	if err != nil || s1.State(storeNow) != store.EndLogout {
		t.Fatalf("logout: %+v %v", s1, err)
	}
	s2, err := st.EndSession(ctx, "ses_c", store.EndSuperseded)
	if err != nil || s2.EndReason != store.EndLogout || !s2.Ended.Equal(s1.Ended) {
		t.Fatalf("second end changed the session: %+v %v", s2, err)
	}
	if _, err := st.EndSession(ctx, "ses_nope", store.EndLogout); !errors.Is(err, store.ErrNoSession) {
		t.Fatalf("unknown session: %v", err)
	}
}
