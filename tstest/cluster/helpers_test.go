package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/problem/rfc9457"
)

func TestLuhn(t *testing.T) {
	// Well-known test numbers pass; one changed digit fails.
	for _, n := range []string{"4111111111111111", "5555555555554444", "4012888888881881", "79927398713"} {
		if !LuhnValid(n) {
			t.Errorf("LuhnValid(%s) = false", n)
		}
		if LuhnDigit(n[:len(n)-1]) != int(n[len(n)-1]-'0') {
			t.Errorf("LuhnDigit(%s…) wrong", n[:len(n)-1])
		}
	}
	for _, n := range []string{"4111111111111112", "79927398710", "", "4", "41111111111111a1"} {
		if LuhnValid(n) {
			t.Errorf("LuhnValid(%q) = true", n)
		}
	}
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 2, 9, 10, 63, 64, 999, 123456789} {
		n := CardNumber(i)
		if len(n) != 16 || !LuhnValid(n) || seen[n] {
			t.Fatalf("CardNumber(%d) = %s: want 16 digits, Luhn-valid, distinct", i, n)
		}
		seen[n] = true
	}
}

func TestParseRSS(t *testing.T) {
	status := "Name:\tmerchant\nVmPeak:\t  812344 kB\nVmRSS:\t   40960 kB\nRssAnon:\t   30000 kB\n"
	n, err := ParseRSS(strings.NewReader(status))
	if err != nil || n != 40960<<10 {
		t.Fatalf("ParseRSS = %d, %v; want %d", n, err, 40960<<10)
	}
	if _, err := ParseRSS(strings.NewReader("Name:\tzombie\nState:\tZ (zombie)\n")); !errors.Is(err, ErrNoRSS) {
		t.Fatalf("no VmRSS line: %v, want ErrNoRSS", err)
	}
	for _, bad := range []string{"VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n", "VmRSS:\t-1 kB\n", "VmRSS:\n"} {
		if _, err := ParseRSS(strings.NewReader(bad)); err == nil || errors.Is(err, ErrNoRSS) {
			t.Errorf("ParseRSS(%q): %v, want a parse error", bad, err)
		}
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		n, err := ProcessRSS(os.Getpid())
		if err != nil || n < 1<<20 {
			t.Fatalf("ProcessRSS(self) = %d, %v", n, err)
		}
	}
}

func TestPickPorts(t *testing.T) {
	ports, err := PickPorts(4)
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := portRange()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p < 1024 || p > 65535 {
			t.Fatalf("ports %v: duplicate or out of range", ports)
		}
		seen[p] = true
		if p < lo {
			t.Errorf("port %d below the range starting at %d", p, lo)
		}
		// Free when picked: a daemon can listen there.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		ln.Close()
	}
	if lo, hi, ok := parseRange("32768\t60999\n"); !ok || lo != 32768 || hi != 60999 {
		t.Fatalf("parseRange = %d %d %v", lo, hi, ok)
	}
	for _, bad := range []string{"", "1", "a b", "9 3"} {
		if _, _, ok := parseRange(bad); ok {
			t.Errorf("parseRange(%q) ok", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := Percentile(ds, p); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("Percentile of nothing")
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Percentile sorted its argument in place")
	}
}

func TestRetryable(t *testing.T) {
	if !retryable(errors.New("dial tcp: connection refused")) {
		t.Error("a network error is retried")
	}
	for status, want := range map[int]bool{500: true, 503: true, 408: true, 429: true, 400: false, 403: false, 409: false, 422: false} {
		err := fmt.Errorf("submit: %w", &rfc9457.Problem{Status: status, Code: "x"})
		if retryable(err) != want {
			t.Errorf("retryable(HTTP %d) = %v", status, !want)
		}
	}
}

// The new-cardholder pool hands each cardholder out once, whoever asks,
// then reports it is used up.
func TestNewCardholderOnce(t *testing.T) {
	c := &Cluster{}
	for i := range 50 {
		c.fresh = append(c.fresh, &Cardholder{Index: 8 + i, ID: fmt.Sprintf("cardholder:c%03d@stress.example", 8+i)})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ch, ok := c.NewCardholder()
				if !ok {
					return
				}
				mu.Lock()
				seen[ch.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 50 || c.NewCardholders() != 50 {
		t.Fatalf("%d of 50 handed out", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s handed out %d times", id, n)
		}
	}
	if _, ok := c.NewCardholder(); ok {
		t.Fatal("a used-up pool handed out a cardholder")
	}
}
