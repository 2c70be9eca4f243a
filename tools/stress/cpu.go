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
	procs       map[string]time.Duration // the daemons by name, and "driver": this process, the load generator
	busy, total time.Duration            // every core of the machine
}

// sampleCPU reads the daemons' and this process's CPU time and the
// machine's. A daemon not running is left out (its line then carries no
// CPU figures: they would not add up).
func sampleCPU(c *cluster.Cluster) (cpuSample, error) {
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
	t, err := processCPU("/proc/self/stat")
	if err != nil {
		return s, err
	}
	s.procs["driver"] = t
	s.busy, s.total, err = machineCPU()
	return s, err
}

// processCPU is utime + stime of /proc/PID/stat: every thread of the
// process, user and system.
func processCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// "PID (COMMAND) STATE …": the command name may hold spaces and
	// parentheses.
	pid, _, _ := strings.Cut(string(b), " (")
	i := strings.LastIndexByte(string(b), ')')
	if _, err := strconv.Atoi(pid); err != nil || i < 0 {
		return 0, fmt.Errorf("%s: not a stat line", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	var ticks int64
	for _, x := range f[11:13] { // fields 14 and 15: utime, stime
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
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
// over the window, their sum per order settled in it, and the machine's
// utilisation over it (every core, other work on the machine included).
func cpuFields(from, to cpuSample, orders int) string {
	var b strings.Builder
	var sum time.Duration
	for _, name := range append(append([]string{}, cluster.Daemons...), "driver") {
		d := to.procs[name] - from.procs[name]
		sum += d
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
