package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// CardNumber returns the i-th test card number of a cluster: 16 digits,
// "4" then a fixed issuer range, i, and a Luhn check digit, so every card
// of a cluster is distinct and valid.
func CardNumber(i int) string {
	if i < 0 || i >= 1e9 {
		panic("cluster: card index out of range")
	}
	body := fmt.Sprintf("499999%09d", i) // 15 digits
	return body + string('0'+rune(LuhnDigit(body)))
}

// LuhnDigit is the check digit that makes body+digit pass the Luhn test.
// body must be decimal digits.
func LuhnDigit(body string) int {
	sum := 0
	// The check digit will sit at position 0 from the right, so the last
	// digit of body is doubled.
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if d < 0 || d > 9 {
			panic("cluster: LuhnDigit of a non-digit")
		}
		if (len(body)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// LuhnValid reports whether number (decimal digits) passes the Luhn test.
func LuhnValid(number string) bool {
	if len(number) < 2 {
		return false
	}
	for _, c := range []byte(number) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return int(number[len(number)-1]-'0') == LuhnDigit(number[:len(number)-1])
}

// portRange is where fixed daemon ports are drawn from: just below the
// kernel's ephemeral range, so a port a killed daemon leaves free is not
// taken meanwhile by an outgoing connection's local port.
func portRange() (lo, hi int) {
	lo, hi = 20000, 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if l, _, ok := parseRange(string(b)); ok && l > 2048 {
			lo, hi = max(1024, l-12000), l-1
		}
	}
	return lo, hi
}

func parseRange(s string) (lo, hi int, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

// PickPorts returns n distinct loopback ports that were free when chosen,
// drawn at random outside the ephemeral range (falling back to the kernel's
// choice). A daemon restarted on its port keeps its peers' URLs valid.
func PickPorts(n int) ([]int, error) {
	lo, hi := portRange()
	seen := map[int]bool{}
	var out []int
	for tries := 0; len(out) < n && tries < 200*n; tries++ {
		p := lo + rand.IntN(hi-lo+1)
		if seen[p] {
			continue
		}
		seen[p] = true
		if portFree(p) {
			out = append(out, p)
		}
	}
	for len(out) < n { // the range is crowded: let the kernel choose
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: no free port: %w", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// ErrNoRSS is returned when a status file has no VmRSS line (a zombie, or
// not Linux).
var ErrNoRSS = errors.New("no VmRSS in process status")

// ParseRSS reads the resident set size in bytes from a /proc/PID/status
// document ("VmRSS:   12345 kB").
func ParseRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("cluster: VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("cluster: VmRSS line %q", sc.Text())
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, ErrNoRSS
}

// ProcessRSS is the resident set size of process pid in bytes.
func ProcessRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseRSS(f)
}

// MiB formats a byte count in mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
