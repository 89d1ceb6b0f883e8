package runner

// The Go runtime gives memory the heap no longer uses back to the system
// lazily, a little at a time. A control plane's work comes in waves: proxies
// connecting, a change rebuilding and pushing every affected proxy. After a
// wave most of what it allocated is garbage, and the process keeps holding
// it: 500 proxies and nine changes of a one-service mesh took a lean server
// from 60 to 70–79 MiB, none of it in use. So once a wave is over (nothing
// rebuilt for a short quiet time), a small control plane collects and
// returns that memory at once. It costs one garbage collection per wave, a
// few milliseconds at these sizes; above releaseBelow of live heap the
// runtime's own pace is left alone, because a collection there costs more
// and memory is not the constraint.

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// releaseQuiet is how long nothing must have been rebuilt before the
	// memory of the last wave is returned.
	releaseQuiet = 100 * time.Millisecond
	// releaseBelow is the live heap below which it is.
	releaseBelow = 64 << 20
)

// releaser returns a wave's freed memory to the system once the wave is
// over.
type releaser struct {
	activity chan struct{}
	quiet    time.Duration
	live     func() uint64 // the live heap
	free     func()        // collects and returns the memory
}

func newReleaser() *releaser {
	return &releaser{activity: make(chan struct{}, 1), quiet: releaseQuiet, live: liveHeap, free: debug.FreeOSMemory}
}

// busy records that a wave is under way (a proxy rebuilt).
func (m *releaser) busy() {
	if m == nil {
		return
	}
	select {
	case m.activity <- struct{}{}:
	default:
	}
}

// run releases memory after each wave until ctx ends.
func (m *releaser) run(ctx context.Context) {
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
			if m.live() < releaseBelow {
				m.free()
			}
		}
	}
}

// liveHeap is the heap the last garbage collection found in use.
func liveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}
