package main

// The load generator's own garbage collection.
//
// The simulated Envoys share the machine's cores with the control plane
// they measure. Real Envoys do not collect garbage, but the load generator
// is a Go program: left to the runtime's usual pacing (GOGC=100) it
// collects each time its heap doubles. While 500 proxies connect that is
// four collections in 0.2 s, about 90 ms of CPU taken from the two cores
// the server needs at that moment, and at 2000 proxies it is seconds. That
// cost is the simulator's, not the control plane's.
//
// So in external mode the load generator collects only when its heap
// reaches a limit (by default half the memory available when it starts),
// and before each change (--gc-before-changes). The CPU it does spend is
// still counted and printed, with the number of collections.

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strings"
)

// gcLimitAuto asks for the default limit: half of MemAvailable.
const gcLimitAuto = -1

// collectOnlyAtLimit turns off the runtime's proportional collection and
// sets a soft memory limit of limit bytes instead: the heap is collected
// when the process's memory nears the limit, not each time it doubles.
// It returns a function that restores the previous settings.
func collectOnlyAtLimit(limit int64) (restore func()) {
	prevPercent := debug.SetGCPercent(-1)
	prevLimit := debug.SetMemoryLimit(limit)
	return func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevPercent)
	}
}

// defaultGCLimit is half of the memory the machine has available now
// (MemAvailable), or 0 when /proc/meminfo cannot be read.
func defaultGCLimit() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "MemAvailable:") {
			return kB(line) / 2
		}
	}
	return 0
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
