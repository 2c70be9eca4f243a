package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCapNodesRefusesNoController: a directory that is no cgroup v1 cpu
// controller is refused with a message saying what is needed, and nothing
// is made in it.
func TestCapNodesRefusesNoController(t *testing.T) {
	root := t.TempDir()
	_, err := capNodes(root, map[string]int{"merchant": os.Getpid()}, []string{"merchant"}, 0.3)
	if err == nil || !strings.Contains(err.Error(), "no cgroup v1 cpu controller") {
		t.Fatalf("capNodes on %s: %v, want a refusal naming the controller", root, err)
	}
	if es, _ := os.ReadDir(root); len(es) != 0 {
		t.Fatalf("left %v behind", es)
	}
	for _, c := range []float64{0, -1, 0.001} {
		if _, err := capNodes(root, nil, nil, c); err == nil {
			t.Errorf("a cap of %v cores was accepted", c)
		}
	}
}

// TestCapNodes: on this machine's cgroup v1 cpu controller, a spinning
// process capped at 0.2 cores gets no more than that, the kernel counts
// the time it held it back, and remove puts it back in the root group and
// deletes the group; a group left by a run that died is swept by the next.
// Where the controller is not writable, capNodes must say so (the bench
// fails with that message rather than measure uncapped nodes).
func TestCapNodes(t *testing.T) {
	if err := checkWritable(cgroupCPU); err != nil {
		if _, cerr := capNodes(cgroupCPU, map[string]int{"m": os.Getpid()}, []string{"m"}, 0.2); cerr == nil ||
			!(strings.Contains(cerr.Error(), "must be writable") || strings.Contains(cerr.Error(), "no cgroup v1 cpu controller")) {
			t.Fatalf("no writable controller (%v), yet capNodes says %v", err, cerr)
		}
		return
	}
	// A group of a run that is gone (pid 1 is never ours; a pid above
	// pid_max never runs).
	stale := filepath.Join(cgroupCPU, fmt.Sprintf("%s%d-merchant", groupPrefix, 1<<22+1))
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(stale) })

	spin := exec.Command("sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { spin.Process.Kill(); spin.Wait() }()
	pid := spin.Process.Pid
	caps, err := capNodes(cgroupCPU, map[string]int{"merchant": pid}, []string{"merchant"}, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	defer caps.remove()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale group %s is still there (%v)", stale, err)
	}
	dir := caps.caps[0].dir
	if q, _ := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us")); strings.TrimSpace(string(q)) != "20000" {
		t.Fatalf("quota %q, want 20000", q)
	}
	if p, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); !strings.Contains(" "+strings.Join(strings.Fields(string(p)), " ")+" ", " "+strconv.Itoa(pid)+" ") {
		t.Fatalf("cgroup.procs %q lacks %d", p, pid)
	}
	before, err := processCPU(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	thr0, err := caps.throttled()
	if err != nil {
		t.Fatal(err)
	}
	const window = 2 * time.Second
	time.Sleep(window)
	after, err := processCPU(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	thr1, err := caps.throttled()
	if err != nil {
		t.Fatal(err)
	}
	// 0.2 cores for 2 s is 400 ms; a tick of slack either side.
	if used := after - before; used > 500*time.Millisecond {
		t.Fatalf("capped at 0.2 cores, the spinner used %s of CPU in %s", used, window)
	}
	if thr1 <= thr0 {
		t.Fatalf("throttled time %s → %s: the quota never held the spinner back", thr0, thr1)
	}
	if err := caps.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("group %s still there after remove (%v)", dir, err)
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(cg), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == "cpu" && f[2] != "/" {
			t.Fatalf("after remove the spinner is in cpu group %q", f[2])
		}
	}
}
