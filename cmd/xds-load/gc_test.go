package main

import (
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

// TestBallastPacesCollections: under the runtime's usual pacing, 64 MiB of
// garbage made one MiB at a time is collected several times; with a
// 256 MiB ballast it is not collected at all, and once the ballast is
// released the usual pacing is back.
func TestBallastPacesCollections(t *testing.T) {
	if paced := allocate(64); paced < 2 {
		t.Fatalf("the runtime's usual pacing collected %d times during 64 MiB of garbage; the test needs at least 2 to compare with", paced)
	}
	b := newBallast(256 << 20)
	allocate(1) // the collection paced before the ballast existed
	withBallast := allocate(64)
	b.release()
	if withBallast != 0 {
		t.Errorf("with a 256 MiB ballast, 64 MiB of garbage was collected %d times; want 0", withBallast)
	}
	allocate(600) // until the runtime collects and sees the ballast gone
	if again := allocate(64); again < 2 {
		t.Errorf("after release, 64 MiB of garbage was collected %d times; want the usual pacing back (2 or more)", again)
	}
}
