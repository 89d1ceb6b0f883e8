package runner

// A control plane's work comes in waves: proxies connecting, a change
// rebuilding and pushing every affected proxy until each has ACKed. After
// a wave most of what it allocated is garbage. What the runtime does about
// it by itself suits a control plane badly in two ways, and the releaser
// acts once a wave is over (nothing rebuilt and no request read for a short
// quiet time):
//
//   - The runtime gives memory back to the system lazily, a little at a
//     time, and a small process keeps holding what a wave left: 500 proxies
//     and nine changes of a one-service mesh took a lean server from 60 to
//     70–79 MiB, none of it in use. Below releaseBelow of live heap the
//     releaser collects and returns that memory at once, a few milliseconds
//     of CPU at these sizes.
//   - A larger heap is collected when the runtime's pacing says, which is
//     often in the middle of the next change: at 2000 proxies, marking
//     400 MB takes 0.3–0.5 s of CPU, on the cores the change needs. So if
//     a wave half again as large as the last one would not fit in the room
//     the runtime leaves before it starts its next collection, the releaser
//     collects now, while
//     nothing else runs, and the next change starts with all the room.
//     (Memory is not given back: at this size it would only be asked for
//     again.)

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// releaseQuiet is how long nothing must have happened before a wave
	// counts as over.
	releaseQuiet = 100 * time.Millisecond
	// releaseBelow is the live heap below which memory is returned.
	releaseBelow = 64 << 20
)

// heapState is what the runtime says of the heap.
type heapState struct {
	objects uint64 // in the heap now, live or garbage
	live    uint64 // found live by the last collection
	goal    uint64 // the size at which the runtime will collect next
	allocs  uint64 // allocated since the process started
}

// releaser collects after each wave (see above).
type releaser struct {
	activity chan struct{}
	quiet    time.Duration
	heap     func() heapState
	free     func() // collects and returns the memory
	collect  func() // collects

	allocs uint64 // heapState.allocs at the end of the last wave
}

func newReleaser() *releaser {
	return &releaser{activity: make(chan struct{}, 1), quiet: releaseQuiet, heap: readHeap,
		free: debug.FreeOSMemory, collect: runtime.GC}
}

// busy records that a wave is under way: a proxy rebuilt, a request read.
// It never blocks.
func (m *releaser) busy() {
	if m == nil {
		return
	}
	select {
	case m.activity <- struct{}{}:
	default:
	}
}

// run acts after each wave until ctx ends.
func (m *releaser) run(ctx context.Context) {
	m.allocs = m.heap().allocs // the first wave is what comes after this
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.activity:
			timer.Reset(m.quiet)
		case <-timer.C:
			h := m.heap()
			wave := h.allocs - m.allocs // what the wave allocated (and the quiet time before it, little)
			m.allocs = h.allocs
			switch {
			case h.live < releaseBelow:
				m.free()
			case h.goal > h.live && h.objects+wave+wave/2 > h.live+(h.goal-h.live)*7/10:
				// The runtime starts a collection before the heap
				// reaches its goal, once 70–95% of the way there from
				// the live heap: 70% is the bound to fit under. Half
				// again as much as the last wave: waves of one kind
				// differ, and a collection that starts halfway through
				// one costs it as much as one at its start.
				m.collect()
			}
		}
	}
}

// readHeap reads the runtime's figures.
func readHeap() heapState {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	metrics.Read(samples)
	var v [4]uint64
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return heapState{objects: v[0], live: v[1], goal: v[2], allocs: v[3]}
}
