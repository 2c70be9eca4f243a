package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupCPU is the cgroup v1 cpu controller's mount. -merchant-cpu gives
// each merchant node a group of its own under it with a CFS quota, so a
// node runs as if it had a machine of that many cores to itself: the nodes
// ratio then measures the merchant tier, not the two cores every process
// of the run shares (issue 17).
const cgroupCPU = "/sys/fs/cgroup/cpu"

// cfsPeriod is the CFS period of every group: 100 ms, the kernel's default.
const cfsPeriod = 100 * time.Millisecond

// groupPrefix names this program's groups: stress-load-<pid>-<node>, so a
// run killed before it removed its groups has them swept by the next.
const groupPrefix = "orderseal-stress-load-"

// cpuCap is one capped node's group.
type cpuCap struct {
	node, dir string
}

// cpuCaps are the groups of a run, removed by remove.
type cpuCaps struct {
	root string
	caps []cpuCap
}

// capNodes puts each pid (by node name) in a group of its own under root
// limited to cores CPUs. On error the groups made so far are removed and
// the error says how to make the controller writable; nothing is skipped.
func capNodes(root string, pids map[string]int, order []string, cores float64) (*cpuCaps, error) {
	if cores <= 0 || math.IsNaN(cores) || math.IsInf(cores, 0) {
		return nil, fmt.Errorf("cpu cap %v: want a positive number of cores", cores)
	}
	quota := int64(math.Round(cores * float64(cfsPeriod/time.Microsecond)))
	if quota < 1000 { // the kernel's minimum quota is 1 ms
		return nil, fmt.Errorf("cpu cap %v cores: below the kernel's 1 ms per %s period", cores, cfsPeriod)
	}
	if err := checkWritable(root); err != nil {
		return nil, err
	}
	sweepStale(root)
	cs := &cpuCaps{root: root}
	for _, node := range order {
		pid := pids[node]
		if pid <= 0 {
			cs.remove()
			return nil, fmt.Errorf("cpu cap: %s is not running", node)
		}
		dir := filepath.Join(root, fmt.Sprintf("%s%d-%s", groupPrefix, os.Getpid(), node))
		if err := os.Mkdir(dir, 0o755); err != nil {
			cs.remove()
			return nil, writableHint(err)
		}
		cs.caps = append(cs.caps, cpuCap{node: node, dir: dir})
		for _, w := range []struct {
			file, value string
		}{
			{"cpu.cfs_period_us", strconv.FormatInt(int64(cfsPeriod/time.Microsecond), 10)},
			{"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
			{"cgroup.procs", strconv.Itoa(pid)},
		} {
			if err := os.WriteFile(filepath.Join(dir, w.file), []byte(w.value), 0o644); err != nil {
				cs.remove()
				return nil, writableHint(err)
			}
		}
	}
	return cs, nil
}

// checkWritable refuses a root that is not a cgroup v1 cpu controller this
// process may create groups in.
func checkWritable(root string) error {
	if _, err := os.Stat(filepath.Join(root, "cpu.cfs_quota_us")); err != nil {
		return fmt.Errorf("cpu cap: %s is no cgroup v1 cpu controller (%w); mount one there (mount -t cgroup -o cpu cgroup %s) or run without -merchant-cpu", root, err, root)
	}
	probe := filepath.Join(root, fmt.Sprintf("%s%d-probe", groupPrefix, os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return writableHint(err)
	}
	return os.Remove(probe)
}

func writableHint(err error) error {
	return fmt.Errorf("cpu cap: %w: the cgroup v1 cpu controller at %s must be writable (run as root, not in a read-only container mount)", err, cgroupCPU)
}

// sweepStale removes the groups of earlier runs whose process is gone
// (killed before its own cleanup ran), moving any process left in one
// back to the root group first.
func sweepStale(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), groupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err != nil || n == os.Getpid() {
			continue
		} else if _, err := os.Stat(fmt.Sprintf("/proc/%d", n)); err == nil {
			continue // that run is still going
		}
		removeGroup(root, filepath.Join(root, e.Name()))
	}
}

// removeGroup moves whatever still runs in dir to root's group, then
// removes dir.
func removeGroup(root, dir string) error {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, pid := range strings.Fields(string(b)) {
			os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0o644)
		}
	}
	var err error
	for range 50 { // the kernel frees a group a moment after its last task left
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// remove removes every group of the run; safe to call more than once.
func (cs *cpuCaps) remove() error {
	if cs == nil {
		return nil
	}
	var errs []error
	for _, c := range cs.caps {
		if err := removeGroup(cs.root, c.dir); err != nil {
			errs = append(errs, fmt.Errorf("cpu cap: removing %s: %w", c.dir, err))
		}
	}
	cs.caps = nil
	return errors.Join(errs...)
}

// throttled is the time the kernel held the groups' processes back for
// their quota so far, summed (cpu.stat throttled_time, nanoseconds).
func (cs *cpuCaps) throttled() (time.Duration, error) {
	var sum time.Duration
	for _, c := range cs.caps {
		b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "throttled_time "); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s/cpu.stat: %w", c.dir, err)
				}
				sum += time.Duration(n)
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("%s/cpu.stat: no throttled_time", c.dir)
		}
	}
	return sum, nil
}

// throttledOrZero is throttled, 0 for a run without caps.
func (cs *cpuCaps) throttledOrZero() (time.Duration, error) {
	if cs == nil {
		return 0, nil
	}
	return cs.throttled()
}
