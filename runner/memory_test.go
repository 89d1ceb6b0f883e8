package runner

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// A wave of rebuilds is followed by one release once it has been quiet,
// none while rebuilds keep coming, and none when the live heap is large.
func TestMemoryIsReleasedOnceAfterAWave(t *testing.T) {
	var released atomic.Int32
	var live atomic.Uint64
	m := newReleaser()
	m.quiet = 200 * time.Millisecond // against rebuilds every 5 ms: a wide margin under -race
	m.live = live.Load
	m.free = func() { released.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx)

	// A wave of 300 ms: rebuilds every 5 ms.
	for range 60 {
		m.busy()
		time.Sleep(5 * time.Millisecond)
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times during the wave, want 0", n)
	}
	time.Sleep(700 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times after the wave, want 1", n)
	}

	// A large heap is left to the runtime.
	live.Store(releaseBelow)
	m.busy()
	time.Sleep(700 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("released with a live heap above %d bytes", releaseBelow)
	}

	var none *releaser
	none.busy() // a runner without one does nothing
}

// liveHeap reads the runtime's figure.
func TestLiveHeapIsRead(t *testing.T) {
	runtime.GC() // the figure is the last collection's
	if liveHeap() == 0 {
		t.Fatal("/gc/heap/live:bytes read as 0")
	}
}
