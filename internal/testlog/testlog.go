// Package testlog gives tests a zap logger that writes to the test's log
// while the test runs and drops what servers log after it ended (stream
// goroutines may log "stream closed" after the test's cleanup), which
// zaptest would turn into a panic.
package testlog

import (
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a debug-level logger bound to t.
func New(t testing.TB) *zap.Logger {
	w := &writer{t: t}
	// Registered first, so it runs last, after the servers have stopped.
	t.Cleanup(w.close)
	enc := zap.NewDevelopmentEncoderConfig()
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zapcore.DebugLevel))
}

type writer struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}

func (w *writer) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
