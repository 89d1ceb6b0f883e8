package runner

// A control plane's work comes in waves: proxies connecting, a change
// rebuilding and pushing every affected proxy until each has ACKed. After
// a wave most of what it allocated is garbage. What the runtime does about
// it by itself suits a control plane badly in two ways, and the releaser
// acts once a wave is over (nothing rebuilt and no request read for a short
// quiet time: 10 ms for a heap under releaseBelow, 100 ms for a larger one):
//
//   - The runtime gives memory back to the system lazily, a little at a
//     time, and a small process keeps holding what a wave left: 500 proxies
//     and nine changes of a one-service mesh took a server without the
//     demo from 60 to 70–79 MiB, none of it in use. Below releaseBelow of
//     live heap the releaser collects and returns that memory at once, a
//     few milliseconds of CPU at these sizes.
//   - A larger heap is collected when the runtime's pacing says, which is
//     often in the middle of the next change: at 2000 proxies, marking
//     400 MB takes 0.3–0.5 s of CPU, on the cores the change needs. So if
//     a wave half again as large as the last one would not fit in the room
//     the runtime leaves before it starts its next collection, the releaser
//     collects now, while nothing else runs, and the next change starts
//     with all the room.
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
	// counts as over, for a heap of releaseBelow or more: collecting a
	// large heap costs 70–200 ms of CPU, too much to risk in a pause
	// within a wave.
	releaseQuiet = 100 * time.Millisecond
	// releaseQuietSmall is the same for a smaller heap, which costs a few
	// milliseconds to collect and return. A short quiet time matters
	// there: a change that comes right after a wave (a proxy connecting
	// and then an edit, say) otherwise finds the last wave's garbage
	// still held, and its own allocations land on top of it. Holding
	// 500 proxies and changed right after they connected, a server without the demo
	// peaked at 57.3–58.7 MiB; with a quiet time before the change, at
	// 54.1–55.8.
	releaseQuietSmall = 10 * time.Millisecond
	// releaseRate and releaseBurst bound the releases that follow the
	// short quiet time: requests that trickle in more than 10 ms apart
	// (proxies reconnecting one by one, say) would otherwise each be a
	// wave of their own, and a collection each. Four in a row are allowed
	// (a pause inside a wave may pass for its end, and the real end must
	// still find the short quiet time), then four a second: a few percent
	// of a core at most. Past that, waves wait for releaseQuiet.
	releaseRate  = 4 // per second
	releaseBurst = 4
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
	activity   chan struct{}
	quiet      time.Duration // quiet time that ends a wave, heap of releaseBelow or more
	quietSmall time.Duration // the same, smaller heap, while releases are allowed (tokens)
	rate       float64       // releases after the short quiet time allowed per second,
	burst      float64       // and in a row
	heap       func() heapState
	live       func() uint64 // heapState.live alone, read on every activity
	free       func()        // collects and returns the memory
	collect    func()        // collects

	allocs   uint64    // heapState.allocs at the end of the last wave
	small    bool      // the live heap was under releaseBelow at the last reading
	tokens   float64   // releases after the short quiet time allowed now
	refilled time.Time // when tokens was last topped up
}

func newReleaser() *releaser {
	return &releaser{activity: make(chan struct{}, 1), quiet: releaseQuiet, quietSmall: releaseQuietSmall,
		rate: releaseRate, burst: releaseBurst, tokens: releaseBurst, refilled: time.Now(),
		heap: readHeap, live: readLive, free: debug.FreeOSMemory, collect: runtime.GC}
}

// quietTime is how long nothing must happen for the wave to be over.
func (m *releaser) quietTime() time.Duration {
	now := time.Now()
	m.tokens = min(m.burst, m.tokens+now.Sub(m.refilled).Seconds()*m.rate)
	m.refilled = now
	if m.small && m.tokens >= 1 {
		return m.quietSmall
	}
	return m.quiet
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
	h := m.heap()
	m.allocs = h.allocs // the first wave is what comes after this
	m.small = h.live < releaseBelow
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.activity:
			// A wave that began with a small heap may have grown it past
			// releaseBelow: the quiet time follows the live heap as the
			// runtime's last collection found it.
			if m.small {
				m.small = m.live() < releaseBelow
			}
			timer.Reset(m.quietTime())
		case <-timer.C:
			h := m.heap()
			wave := h.allocs - m.allocs // what the wave allocated (and the quiet time before it, little)
			m.allocs = h.allocs
			m.small = h.live < releaseBelow
			switch {
			case h.live < releaseBelow:
				m.free()
				m.tokens = max(0, m.tokens-1)
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

// readLive reads the live heap the runtime's last collection found.
func readLive() uint64 { return readMetrics("/gc/heap/live:bytes")[0] }

// readHeap reads the runtime's figures.
func readHeap() heapState {
	v := readMetrics("/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes",
		"/gc/heap/goal:bytes", "/gc/heap/allocs:bytes")
	return heapState{objects: v[0], live: v[1], goal: v[2], allocs: v[3]}
}

// readMetrics reads the runtime's uint64 metrics of those names (0 for one
// it does not have).
func readMetrics(names ...string) []uint64 {
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := make([]uint64, len(names))
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return v
}
