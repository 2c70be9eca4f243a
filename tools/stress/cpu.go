package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"orderseal/tstest/cluster"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ, 100 on Linux for
// every architecture the kernel exports it on).
const userHZ = 100

// cpuSample is the CPU time each process of a run had used at one moment,
// and the machine's busy and total time, from /proc.
type cpuSample struct {
	// The daemons by name (a party's first node), "driver" (this process,
	// the load generator), "merchants" (every merchant node) and with
	// PostgreSQL "postgres" (the server and its backends).
	procs       map[string]time.Duration
	busy, total time.Duration // every core of the machine
}

// sampleCPU reads the daemons', this process's and, pgPID not 0, the
// PostgreSQL server's CPU time, and the machine's. A daemon not running
// fails the sample (its line then carries no CPU figures: they would not
// add up).
func sampleCPU(c *cluster.Cluster, pgPID int) (cpuSample, error) {
	s := cpuSample{procs: map[string]time.Duration{}}
	for _, name := range cluster.Daemons {
		pid := c.PID(name)
		if pid == 0 {
			return s, fmt.Errorf("%s is not running", name)
		}
		t, err := processCPU(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, err
		}
		s.procs[name] = t
	}
	for _, node := range c.MerchantNodes() {
		pid := c.PID(node)
		if pid == 0 {
			return s, fmt.Errorf("%s is not running", node)
		}
		t, err := processCPU(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, err
		}
		s.procs["merchants"] += t
	}
	if pgPID != 0 {
		t, err := serverCPU(pgPID)
		if err != nil {
			return s, err
		}
		s.procs["postgres"] = t
	}
	t, err := processCPU("/proc/self/stat")
	if err != nil {
		return s, err
	}
	s.procs["driver"] = t
	s.busy, s.total, err = machineCPU()
	return s, err
}

// serverCPU is a PostgreSQL server's CPU time: its postmaster's, with the
// children it has reaped (cutime, cstime: backends of closed connections),
// and every live child's (the backends, the WAL writer, the checkpointer).
func serverCPU(postmaster int) (time.Duration, error) {
	f, err := statFields(fmt.Sprintf("/proc/%d/stat", postmaster))
	if err != nil {
		return 0, err
	}
	sum, err := ticks(f[11:15]) // utime stime cutime cstime
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := strconv.Itoa(postmaster)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		f, err := statFields("/proc/" + e.Name() + "/stat")
		if err != nil || f[1] != parent { // gone since the listing, or another's child
			continue
		}
		t, err := ticks(f[11:13])
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// statFields are the fields of a /proc/PID/stat line after "(COMMAND)":
// [0] is the state, [1] the parent, [11] utime.
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// "PID (COMMAND) STATE …": the command name may hold spaces and
	// parentheses.
	pid, _, _ := strings.Cut(string(b), " (")
	i := strings.LastIndexByte(string(b), ')')
	if _, err := strconv.Atoi(pid); err != nil || i < 0 {
		return nil, fmt.Errorf("%s: not a stat line", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("%s: %d fields", path, len(f))
	}
	return f, nil
}

// ticks adds up clock-tick fields into a duration.
func ticks(fields []string) (time.Duration, error) {
	var n int64
	for _, x := range fields {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, err
		}
		n += v
	}
	return time.Duration(n) * time.Second / userHZ, nil
}

// processCPU is utime + stime of /proc/PID/stat: every thread of the
// process, user and system.
func processCPU(path string) (time.Duration, error) {
	f, err := statFields(path)
	if err != nil {
		return 0, err
	}
	t, err := ticks(f[11:13]) // fields 14 and 15: utime, stime
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// machineCPU is the first line of /proc/stat: the time all cores spent
// busy (anything but idle and iowait) and in all.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var all, idle int64
	for i, x := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		all += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	tick := time.Second / userHZ
	return time.Duration(all-idle) * tick, time.Duration(all) * tick, nil
}

// cpuFields is the CPU part of a level's line: each process's CPU seconds
// over the window (merchant-cpu-s the first merchant node's,
// merchants-cpu-s every node's; postgres-cpu-s the server's, when the
// stores are on it), their sum per order settled in it (every merchant
// node and the server counted), and the machine's utilisation over it
// (every core, other work on the machine included).
func cpuFields(from, to cpuSample, orders int) string {
	var b strings.Builder
	var sum time.Duration
	_, nodes := to.procs["merchants"]
	for _, name := range append(append([]string{}, cluster.Daemons...), "driver", "merchants", "postgres") {
		got, ok := to.procs[name]
		if !ok && (name == "merchants" || name == "postgres") {
			continue // a sample without them: a line as before
		}
		d := got - from.procs[name]
		if name != cluster.Merchant || !nodes { // the first node is inside merchants
			sum += d
		}
		fmt.Fprintf(&b, "\t%.2f %s-cpu-s", d.Seconds(), name)
	}
	if orders > 0 {
		fmt.Fprintf(&b, "\t%.3f cpu-ms/order", 1000*sum.Seconds()/float64(orders))
	}
	if total := to.total - from.total; total > 0 {
		fmt.Fprintf(&b, "\t%.1f busy-%%", 100*float64(to.busy-from.busy)/float64(total))
	}
	return b.String()
}
