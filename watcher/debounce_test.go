package watcher

import (
	"testing"
	"time"
)

// TestDebounceHoldOffAndCeiling: an event fires no earlier than the
// hold-off; events that keep coming sooner than the hold-off still fire,
// at the ceiling.
func TestDebounceHoldOffAndCeiling(t *testing.T) {
	d := NewDebounce(30*time.Millisecond, 200*time.Millisecond)
	start := time.Now()
	d.Changed()
	<-d.C()
	d.Fired()
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("one event fired after %v, before the 30ms hold-off", took)
	}

	start = time.Now()
	stop := time.After(3 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond) // faster than the hold-off
	defer tick.Stop()
	d.Changed()
	for {
		select {
		case <-tick.C:
			d.Changed()
			continue
		case <-d.C():
			d.Fired()
			if took := time.Since(start); took < 200*time.Millisecond {
				t.Errorf("a steady stream fired after %v, before the 200ms ceiling", took)
			}
		case <-stop:
			t.Fatal("a steady stream of events never fired: no ceiling")
		}
		return
	}
}
