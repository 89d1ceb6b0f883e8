package watcher

import "time"

// Default debounce timings of both watchers.
const (
	DefaultHoldOff  = 20 * time.Millisecond
	DefaultMaxDelay = 100 * time.Millisecond
)

// Debounce turns a burst of change events into one rebuild. It fires
// holdOff after the last event, but never later than maxDelay after the
// first event of the burst, so that a steady stream of edits cannot put the
// rebuild off forever. One loop uses it: it calls Changed for each event,
// and Fired when it receives from C.
type Debounce struct {
	holdOff, maxDelay time.Duration
	timer             *time.Timer
	first             time.Time // the burst's first event; zero between bursts
}

// NewDebounce returns a Debounce with no burst under way.
func NewDebounce(holdOff, maxDelay time.Duration) *Debounce {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Debounce{holdOff: holdOff, maxDelay: maxDelay, timer: t}
}

// Changed records an event: the rebuild waits for holdOff of quiet, within
// the burst's ceiling.
func (d *Debounce) Changed() {
	now := time.Now()
	if d.first.IsZero() {
		d.first = now
	}
	d.timer.Reset(max(0, min(d.holdOff, d.first.Add(d.maxDelay).Sub(now))))
}

// C delivers a value when the burst is over and the rebuild is due.
func (d *Debounce) C() <-chan time.Time { return d.timer.C }

// Fired ends the burst; the next event starts a new one.
func (d *Debounce) Fired() { d.first = time.Time{} }
