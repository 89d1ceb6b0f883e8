package xds

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A proxy that sends requests without reading the responses cannot make
// them pile up: past maxQueued, the stream fails, the queue is let go, and
// nothing more is taken.
func TestOutboxIsBounded(t *testing.T) {
	release := make(chan struct{})
	var sent []int
	l := &streamLoop[int, int, int]{
		prepare: func(r int) int { return r },
		send: func(m int) error {
			<-release // the proxy does not read
			sent = append(sent, m)
			return nil
		},
	}
	for i := range maxQueued + 10 {
		l.deliver(i)
	}
	if err := l.out.err(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("after %d responses not read: error %v, want ResourceExhausted", maxQueued+10, err)
	}
	l.out.mu.Lock()
	queued := len(l.out.queue)
	l.out.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d responses still held after the stream failed", queued)
	}
	close(release)
	l.out.close() // waits for the sender
	if len(sent) > 1 {
		t.Fatalf("sent %v after the failure; want at most the one already being sent", sent)
	}
}
