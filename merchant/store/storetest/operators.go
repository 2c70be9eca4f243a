package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"orderseal/merchant/store"
)

// testOperators: accounts are unique by name, listed by name, removed with
// their sessions; failures lock an account at the limit and a success or
// an unlock clears them.
func testOperators(t *testing.T, st store.Store) {
	ctx := context.Background()
	if ops, err := st.ListOperators(ctx); err != nil || len(ops) != 0 {
		t.Fatalf("no operators yet: %v %v", ops, err)
	}
	for _, op := range []*store.Operator{
		{Name: "zoe", Role: store.RoleViewer, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"},
		{Name: "adam", Role: store.RoleAdmin, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$b3RoZXI"},
	} {
		if err := st.AddOperator(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddOperator(ctx, &store.Operator{Name: "zoe", Role: store.RoleAdmin, PasswordHash: "x"}); !errors.Is(err, store.ErrOperatorExists) {
		t.Fatalf("a second zoe: %v", err)
	}
	ops, err := st.ListOperators(ctx)
	if err != nil || len(ops) != 2 || ops[0].Name != "adam" || ops[1].Name != "zoe" || ops[1].Role != store.RoleViewer {
		t.Fatalf("operators %+v %v", ops, err)
	}
	zoe, err := st.Operator(ctx, "zoe")
	if err != nil || zoe.PasswordHash != "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA" || !zoe.Created.Equal(Now) || !zoe.LastLogin.IsZero() || zoe.Locked(Now) {
		t.Fatalf("zoe %+v %v", zoe, err)
	}
	if _, err := st.Operator(ctx, "nobody"); !errors.Is(err, store.ErrNoOperator) {
		t.Fatalf("unknown operator: %v", err)
	}

	// Two failures, then a success: the count starts again.
	for i := 1; i <= 2; i++ {
		op, err := st.FailLogin(ctx, "zoe", 3, time.Hour)
		if err != nil || op.Failures != i || op.Locked(Now) {
			t.Fatalf("failure %d: %+v %v", i, op, err)
		}
	}
	tok := []byte("0123456789abcdef0123456789abcdef")
	if err := st.StartLogin(ctx, &store.Login{TokenHash: tok, Operator: "zoe", Created: Now, Expires: Now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if zoe, _ = st.Operator(ctx, "zoe"); zoe.Failures != 0 || !zoe.LastLogin.Equal(Now) {
		t.Fatalf("after a login: %+v", zoe)
	}
	l, op, err := st.Login(ctx, tok)
	if err != nil || l.Operator != "zoe" || op.Name != "zoe" || op.Role != store.RoleViewer || !l.Expires.Equal(Now.Add(time.Hour)) {
		t.Fatalf("login %+v %+v %v", l, op, err)
	}
	if _, _, err := st.Login(ctx, []byte("another token hash, never stored")); !errors.Is(err, store.ErrNoLogin) {
		t.Fatalf("unknown session: %v", err)
	}
	// A session past its expiry is no session, and the next login drops it.
	old := []byte("expired token hash...............")
	if err := st.StartLogin(ctx, &store.Login{TokenHash: old, Operator: "adam", Created: Now.Add(-2 * time.Hour), Expires: Now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Login(ctx, old); !errors.Is(err, store.ErrNoLogin) {
		t.Fatalf("expired session: %v", err)
	}
	if err := st.StartLogin(ctx, &store.Login{TokenHash: []byte("nobody's"), Operator: "nobody", Created: Now, Expires: Now.Add(time.Hour)}); !errors.Is(err, store.ErrNoOperator) {
		t.Fatalf("a session of no account: %v", err)
	}

	// Concurrent failures all count: three at once lock at a limit of three.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.FailLogin(ctx, "adam", 3, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	adam, err := st.Operator(ctx, "adam")
	if err != nil || !adam.Locked(Now) || !adam.LockedUntil.Equal(Now.Add(time.Hour)) || adam.Locked(Now.Add(time.Hour)) || adam.Failures != 0 {
		t.Fatalf("after three failures at a limit of three: %+v %v", adam, err)
	}
	if err := st.UnlockOperator(ctx, "adam"); err != nil {
		t.Fatal(err)
	}
	if adam, _ = st.Operator(ctx, "adam"); adam.Locked(Now) {
		t.Fatalf("unlocked: %+v", adam)
	}
	if _, err := st.FailLogin(ctx, "nobody", 3, time.Hour); !errors.Is(err, store.ErrNoOperator) {
		t.Fatalf("failure of no account: %v", err)
	}
	if err := st.UnlockOperator(ctx, "nobody"); !errors.Is(err, store.ErrNoOperator) {
		t.Fatalf("unlock of no account: %v", err)
	}

	// Ending a session, and removing an account, end its sessions.
	if err := st.EndLogin(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Login(ctx, tok); !errors.Is(err, store.ErrNoLogin) {
		t.Fatalf("ended session: %v", err)
	}
	if err := st.EndLogin(ctx, tok); err != nil {
		t.Fatalf("ending it again: %v", err)
	}
	if err := st.StartLogin(ctx, &store.Login{TokenHash: tok, Operator: "zoe", Created: Now, Expires: Now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveOperator(ctx, "zoe"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Login(ctx, tok); !errors.Is(err, store.ErrNoLogin) {
		t.Fatalf("session of a removed account: %v", err)
	}
	if err := st.RemoveOperator(ctx, "zoe"); !errors.Is(err, store.ErrNoOperator) {
		t.Fatalf("removing zoe twice: %v", err)
	}
	if ops, _ := st.ListOperators(ctx); len(ops) != 1 || ops[0].Name != "adam" {
		t.Fatalf("after removing zoe: %+v", ops)
	}
}
