package main

import (
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
