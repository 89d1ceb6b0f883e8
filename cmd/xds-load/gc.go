package main

// The load generator's own garbage collection.
//
// The simulated Envoys share the machine's cores with the control plane
// they measure. Real Envoys do not collect garbage, but the load generator
// is a Go program: left to the runtime's pacing (GOGC=100) it collects
// each time its heap doubles, starting at 4 MB. While 500 proxies connect
// to the small mesh that is four collections in 0.2 s, about 90 ms of CPU
// taken from the two cores the server needs at that moment.
//
// So in external mode the load generator keeps a ballast: one large
// allocation that is never written. The runtime counts it as live heap
// when it paces its collections, so the heap is collected at twice
// (ballast + live), not twice live; the ballast's pages are never touched,
// so they cost no memory. A small run is then not collected at all
// (except before each change, --gc-before-changes). A large one, whose
// simulated Envoys hold gigabytes, is paced much as before. (Turning
// collection off up to a memory limit was tried first: the small run
// gained as much, but in the one large run tried the load generator spent
// 12.6 s of CPU connecting 2000 proxies, against 7.7-8.5 s paced.) The CPU
// the load generator spends is counted and printed, with the number of
// its collections.

import (
	"runtime"
	"runtime/metrics"
)

// ballast is a heap allocation of n bytes that is never written: the Go
// runtime counts it as live heap, but the pages the kernel maps for it
// stay untouched (a fresh large allocation is zero already), so it costs
// address space and no memory. release drops it.
type ballast struct{ b []byte }

func newBallast(n int64) *ballast { return &ballast{b: make([]byte, n)} }

func (b *ballast) release() {
	// Without this, the compiler may see the ballast as never read and
	// let it be collected at once.
	runtime.KeepAlive(b.b)
	b.b = nil
}

// gcCycles is the number of garbage collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
