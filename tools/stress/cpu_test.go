package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestProcessAndMachineCPU(t *testing.T) {
	before, err := processCPU("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	busy0, total0, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has counted 100 ms of this process's CPU (a
	// shared machine may give it less than a core).
	var after time.Duration
	x := 0
	for t0 := time.Now(); after-before < 100*time.Millisecond; x++ {
		if time.Since(t0) > time.Minute {
			t.Fatalf("a minute of spinning counted as %s of CPU", after-before)
		}
		if x%100000 == 0 {
			if after, err = processCPU("/proc/self/stat"); err != nil {
				t.Fatal(err)
			}
		}
	}
	busy1, total1, err := machineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if busy1-busy0 <= 0 || busy1-busy0 > total1-total0 {
		t.Errorf("machine: busy %s of %s", busy1-busy0, total1-total0)
	}
	if _, err := processCPU("/proc/self/status"); err == nil {
		t.Error("a file that is not a stat file parsed")
	}
}

func TestCPUFields(t *testing.T) {
	from := cpuSample{procs: map[string]time.Duration{"merchant": time.Second}, busy: time.Second, total: 4 * time.Second}
	to := cpuSample{procs: map[string]time.Duration{"merchant": 3 * time.Second, "vault": time.Second, "driver": time.Second},
		busy: 4 * time.Second, total: 8 * time.Second}
	got := cpuFields(from, to, 400)
	for _, want := range []string{"\t2.00 merchant-cpu-s", "\t1.00 vault-cpu-s", "\t0.00 issuer-cpu-s", "\t1.00 driver-cpu-s", "\t10.000 cpu-ms/order", "\t75.0 busy-%"} {
		if !strings.Contains(got, want) {
			t.Errorf("cpuFields = %q, lacks %q", got, want)
		}
	}
}

// TestCPUFieldsNodes: with every merchant node and the PostgreSQL server
// sampled, the line carries both and the per-order sum counts each node
// once (the first node is inside merchants-cpu-s) and the server.
func TestCPUFieldsNodes(t *testing.T) {
	from := cpuSample{procs: map[string]time.Duration{"merchant": time.Second, "merchants": 2 * time.Second}, busy: time.Second, total: 4 * time.Second}
	to := cpuSample{procs: map[string]time.Duration{"merchant": 2 * time.Second, "merchants": 5 * time.Second, "postgres": 2 * time.Second,
		"driver": time.Second}, busy: 4 * time.Second, total: 8 * time.Second}
	got := cpuFields(from, to, 600)
	for _, want := range []string{"\t1.00 merchant-cpu-s", "\t3.00 merchants-cpu-s", "\t2.00 postgres-cpu-s", "\t10.000 cpu-ms/order"} {
		if !strings.Contains(got, want) {
			t.Errorf("cpuFields = %q, lacks %q", got, want)
		}
	}
}

// TestServerCPU: a server's CPU time holds its own and its children's: a
// child that spins adds to its parent's count while it lives.
func TestServerCPU(t *testing.T) {
	self, err := processCPU("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	spin := exec.Command("sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { spin.Process.Kill(); spin.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		child, err := processCPU(fmt.Sprintf("/proc/%d/stat", spin.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		all, err := serverCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if all < self {
			t.Fatalf("serverCPU %s below the process's own %s", all, self)
		}
		if child >= 100*time.Millisecond {
			if all < self+child {
				t.Fatalf("serverCPU %s, want at least the process's %s and its child's %s", all, self, child)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child spun a minute and counted %s", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
