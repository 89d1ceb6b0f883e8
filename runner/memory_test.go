package runner

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// A wave (rebuilds, requests) is followed by one collection once it has
// been quiet, none while the wave goes on. A small heap is collected and
// returned; a large one is collected only if another wave like the last
// (half again as large) would not fit before the runtime's next collection.
func TestMemoryIsCollectedOnceAfterAWave(t *testing.T) {
	var freed, collected atomic.Int32
	var heap atomic.Pointer[heapState]
	m := newReleaser()
	m.quiet = 200 * time.Millisecond // against activity every 5 ms: a wide margin under -race
	m.quietSmall = m.quiet
	m.heap = func() heapState { return *heap.Load() }
	m.live = func() uint64 { return heap.Load().live }
	m.free = func() { freed.Add(1) }
	m.collect = func() { collected.Add(1) }
	heap.Store(&heapState{objects: 30 << 20, live: 20 << 20, goal: 40 << 20, allocs: 100 << 20}) // when run starts
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx)

	wave := func() {
		for range 60 { // 300 ms: something every 5 ms
			m.busy()
			time.Sleep(5 * time.Millisecond)
		}
	}
	check := func(when string, wantFreed, wantCollected int32) {
		t.Helper()
		if f, c := freed.Load(), collected.Load(); f != wantFreed || c != wantCollected {
			t.Fatalf("%s: freed %d times and collected %d times, want %d and %d", when, f, c, wantFreed, wantCollected)
		}
	}

	heap.Store(&heapState{objects: 50 << 20, live: 20 << 20, goal: 40 << 20, allocs: 100 << 20})
	wave()
	check("during a wave", 0, 0)
	time.Sleep(700 * time.Millisecond)
	check("after a wave, small heap", 1, 0)

	// Large heap, 400 MB live: the runtime collects at 540 MB at the
	// earliest (70% of the way to its 600 MB goal). 500 MB are used, and
	// the wave allocated 20 MB (allocs went from 100 to 120 MB): another,
	// even half again as large, fits; left to the runtime.
	heap.Store(&heapState{objects: 500 << 20, live: 400 << 20, goal: 600 << 20, allocs: 120 << 20})
	wave()
	time.Sleep(700 * time.Millisecond)
	check("after a wave whose like fits", 1, 0)

	// This wave allocated 40 MB: another half again as large (60 MB)
	// would not fit under 540 MB; collected now.
	heap.Store(&heapState{objects: 500 << 20, live: 400 << 20, goal: 600 << 20, allocs: 160 << 20})
	wave()
	check("during a wave", 1, 0)
	time.Sleep(700 * time.Millisecond)
	check("after a wave whose like would not fit", 1, 1)

	var none *releaser
	none.busy() // a runner without one does nothing
}

// A small heap's wave is over after the short quiet time, a large heap's
// only after the long one.
func TestQuietTimeFollowsTheHeap(t *testing.T) {
	var freed, collected atomic.Int32
	var heap atomic.Pointer[heapState]
	m := newReleaser()
	m.quietSmall, m.quiet = 100*time.Millisecond, 5*time.Second
	m.heap = func() heapState { return *heap.Load() }
	m.live = func() uint64 { return heap.Load().live }
	m.free = func() { freed.Add(1) }
	m.collect = func() { collected.Add(1) }
	heap.Store(&heapState{objects: 30 << 20, live: 20 << 20, goal: 40 << 20, allocs: 100 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx)
	time.Sleep(50 * time.Millisecond) // run has read the heap: small

	m.busy()
	time.Sleep(time.Second)
	if f := freed.Load(); f != 1 {
		t.Fatalf("a small heap was freed %d times in the second after a wave; want once, 100 ms after it", f)
	}

	// The heap has grown to 400 MB live, allocating 200 MB: too much to
	// fit before the runtime's next collection. The live heap is read
	// again as a wave goes on, so this wave's end waits for the long
	// quiet time, although the last reading at a wave's end was small.
	heap.Store(&heapState{objects: 500 << 20, live: 400 << 20, goal: 600 << 20, allocs: 300 << 20})
	m.busy()
	time.Sleep(time.Second)
	if c := collected.Load(); c != 0 {
		t.Fatalf("a heap that grew large was collected %d times within a second of its wave; want it to wait the 5 s quiet time", c)
	}
	if f := freed.Load(); f != 1 {
		t.Fatalf("freed %d times; want only after the first wave", f)
	}
}

// A small heap's waves end after the short quiet time a few in a row, and
// then no more often than the rate allows: requests trickling in are not a
// collection each.
func TestReleasesAreRateLimited(t *testing.T) {
	var freed atomic.Int32
	m := newReleaser()
	m.quietSmall, m.quiet = 50*time.Millisecond, 2*time.Second
	m.burst, m.tokens, m.rate = 2, 2, 0.5 // two in a row, then one every 2 s
	m.heap = func() heapState { return heapState{objects: 30 << 20, live: 20 << 20, goal: 40 << 20} }
	m.live = func() uint64 { return 20 << 20 }
	m.free = func() { freed.Add(1) }
	m.collect = func() {}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx)
	time.Sleep(20 * time.Millisecond)

	for i := int32(1); i <= 2; i++ {
		m.busy()
		time.Sleep(300 * time.Millisecond)
		if f := freed.Load(); f != i {
			t.Fatalf("freed %d times 300 ms after wave %d; want %d: the first two end after the short quiet time", f, i, i)
		}
	}
	m.busy() // a third wave right after: the burst is spent
	time.Sleep(300 * time.Millisecond)
	if f := freed.Load(); f != 2 {
		t.Fatalf("freed %d times 300 ms after the third wave; want it to wait the long quiet time", f)
	}
	time.Sleep(2500 * time.Millisecond)
	if f := freed.Load(); f != 3 {
		t.Fatalf("freed %d times; want the third wave released after the long quiet time", f)
	}
}

// The runtime's figures are read.
func TestHeapIsRead(t *testing.T) {
	runtime.GC() // live is the last collection's
	h := readHeap()
	if h.live == 0 || h.objects == 0 || h.goal <= h.live || h.allocs < h.objects {
		t.Fatalf("heap figures %+v: want live and objects above 0, the goal above live, allocs at least objects", h)
	}
}
