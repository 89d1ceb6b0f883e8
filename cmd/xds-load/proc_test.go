package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestReadProc: /proc/self read as the report reads the server: CPU,
// memory, and page faults, which grow by about one per page when memory
// given back to the system is touched again.
func TestReadProc(t *testing.T) {
	debug.FreeOSMemory()
	before, err := readProc(0)
	if err != nil {
		t.Fatal(err)
	}
	chunks, _ := touch(16) // gc_test.go
	after, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.RSSBytes < 16<<20 || after.PeakBytes < after.RSSBytes || after.AnonBytes == 0 || after.CPUSeconds <= 0 {
		t.Errorf("implausible figures: %+v", after)
	}
	if got, want := after.MinorFaults-before.MinorFaults, int64(16<<20/4096/2); got < want {
		t.Errorf("touching 16 MiB of fresh memory counted %d page faults; want at least %d", got, want)
	}
	_ = chunks
}
