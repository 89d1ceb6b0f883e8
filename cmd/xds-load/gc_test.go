package main

import (
	"runtime/debug"
	"testing"
)

var sink []byte

// allocate makes n MiB of garbage, one MiB at a time, and returns how many
// collections ran meanwhile.
func allocate(n int) uint64 {
	before := gcCycles()
	for range n {
		sink = make([]byte, 1<<20)
	}
	sink = nil
	return gcCycles() - before
}

// TestCollectOnlyAtLimit: under the runtime's pacing, 64 MiB of garbage
// made one MiB at a time is collected several times; with a 1 GiB limit
// it is not collected at all, and the pacing is back afterwards.
func TestCollectOnlyAtLimit(t *testing.T) {
	if paced := allocate(64); paced < 2 {
		t.Fatalf("the runtime's usual pacing collected %d times during 64 MiB of garbage; the test needs at least 2 to compare with", paced)
	}
	restore := collectOnlyAtLimit(1 << 30)
	limited := allocate(64)
	restore()
	if limited != 0 {
		t.Errorf("with a 1 GiB limit, 64 MiB of garbage was collected %d times; want 0", limited)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after restore GOGC is %d, want 100", p)
	}
	if again := allocate(64); again < 2 {
		t.Errorf("after restore, 64 MiB of garbage was collected %d times; want the usual pacing back (2 or more)", again)
	}
}

func TestDefaultGCLimitIsHalfTheAvailableMemory(t *testing.T) {
	limit := defaultGCLimit()
	if limit <= 0 {
		t.Fatalf("defaultGCLimit() = %d; /proc/meminfo should give MemAvailable", limit)
	}
	if m := readMachine(); limit > m.MemoryMiB<<20/2 {
		t.Errorf("limit %d MiB is more than half the machine's %d MiB", limit>>20, m.MemoryMiB)
	}
}
