package runner

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/internal/synth"
)

// goroutineID reads the calling goroutine's number from its stack trace's
// first line ("goroutine 42 [running]:"). Tests only.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return -1
	}
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return -1
	}
	return id
}

// TestStreamRebuildsRunAside: the rebuilds a proxy's stream asks for
// (Connect, Listeners) run on a goroutine of their own, so the deep stack
// of translating does not stay with the stream goroutine for as long as
// the proxy is connected (see rebuildAside). The rebuild logs "published"
// on the goroutine that ran it.
func TestStreamRebuildsRunAside(t *testing.T) {
	var mu sync.Mutex
	var ran []int
	core, _ := observer.New(zapcore.DebugLevel)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "published" {
			mu.Lock()
			ran = append(ran, goroutineID())
			mu.Unlock()
		}
		return nil
	}))
	r := New(cache.New(nil), log, Options{DefaultNamespace: "default"})
	r.Update(context.Background(), build(t, string(synth.YAML(1, "default"))))

	caller := goroutineID()
	node := grpcNode("a.default")
	if err := r.Connect(node); err != nil {
		t.Fatal(err)
	}
	r.Listeners(node, []string{"svc-0000"}) // a proxyless client subscribing to a target
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 2 {
		t.Fatalf("%d rebuilds published, want 2 (connect, then the new listener names)", len(ran))
	}
	for i, id := range ran {
		if id == caller || id <= 0 {
			t.Errorf("rebuild %d ran on goroutine %d; the caller is %d: want a goroutine of its own", i+1, id, caller)
		}
	}
}
