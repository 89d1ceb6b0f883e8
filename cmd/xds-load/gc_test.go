package main

import (
	"runtime"
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

// touch allocates n MiB, 64 KiB at a time, writes every page, and returns
// the chunks (to keep them live) and the page faults that took.
func touch(n int) ([][]byte, int64) {
	before := minorFaults()
	chunks := touched(int64(n)<<20, 64<<10)
	return chunks, minorFaults() - before
}

// TestPrefaultMapsPagesAhead: with the load generator's ballast, memory
// allocated after prefault is built on the pages prefault touched: it
// takes a fraction of the page faults the same allocations take on a heap
// whose free pages went back to the system.
func TestPrefaultMapsPagesAhead(t *testing.T) {
	b := newBallast(256 << 20)
	defer func() {
		// The heap as it was: no ballast, and a goal paced on what is live
		// without this test's memory (TestBallastPacesCollections counts
		// collections).
		b.release()
		runtime.GC()
	}()

	debug.FreeOSMemory() // every free page back to the system
	chunks, cold := touch(32)
	if cold < 32<<20/4096/2 {
		t.Fatalf("32 MiB on a heap given back to the system took %d page faults; the test needs about 8192 to compare with", cold)
	}
	runtime.KeepAlive(chunks)
	chunks = nil
	debug.FreeOSMemory()

	if f := prefault(64 << 20); f < 64<<20/4096/2 {
		t.Errorf("prefault of 64 MiB took %d page faults; want about 16384 (did it touch the pages?)", f)
	}
	chunks, warm := touch(32)
	runtime.KeepAlive(chunks)
	// Without the prefault the two counts are alike. With it, a plain build
	// takes a few dozen page faults here against 8200; under the race
	// detector a third of the cold count (its shadow memory of the reused
	// pages is cleared and touched again).
	if warm > cold/2 {
		t.Errorf("32 MiB after prefault took %d page faults, %d without: want half or fewer", warm, cold)
	}
	t.Logf("page faults for 32 MiB: %d on a fresh heap, %d after prefault", cold, warm)
}
