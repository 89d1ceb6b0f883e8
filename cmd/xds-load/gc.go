package main

// The load generator's own garbage collection, and its own memory.
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
//
// Memory the load generator touches for the first time costs it page
// faults: the kernel maps and zeroes each 4 KiB page. Connecting 500
// proxies to the small mesh, a perf profile of a fresh load generator
// put 40% of its CPU in page faults (30% zeroing pages): its heap and
// goroutine stacks growing from nothing, in the 0.2 s being measured. A
// real Envoy's memory is in place before it connects. So in external
// mode, before the clock starts, the load generator touches a stretch of
// heap and frees it (prefault): the runtime keeps the freed pages (the
// ballast keeps its heap goal far above them, so its scavenger does not
// return them to the system) and builds the simulated Envoys' heap and
// stacks from them. Its peak RSS grows by about that much; the CPU it
// takes from the server while proxies connect falls by a fifth (0.133 to
// 0.104 s, six runs each).

import (
	"runtime"
	"runtime/metrics"
	"syscall"
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

// prefault touches n bytes of heap, a page at a time, and frees them,
// collecting so that the pages are free for the runtime to reuse when
// this returns (see above). It returns the page faults it took.
func prefault(n int64) (faults int64) {
	before := minorFaults()
	runtime.KeepAlive(touched(n, 256<<10))
	runtime.GC() // returns when the chunks are swept, their pages free
	return minorFaults() - before
}

// touched allocates n bytes in chunks of chunk bytes and writes a byte
// on every page of each, so that every page is mapped.
func touched(n, chunk int64) [][]byte {
	const page = 4096
	chunks := make([][]byte, 0, n/chunk+1)
	for done := int64(0); done < n; done += chunk {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		chunks = append(chunks, b)
	}
	return chunks
}

// minorFaults is the page faults this process has taken that needed no
// I/O (a fresh page mapped and zeroed, for one).
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}
