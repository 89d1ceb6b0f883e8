// Package e2e runs minimesh end to end with gRPC-Go's own xDS client and
// xDS-enabled servers: real listeners, routes, clusters and endpoints over
// ADS, and real RPCs whose answers say which version served them.
package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/minimesh/minimesh/internal/demoapp"
	"github.com/minimesh/minimesh/internal/testbed"
)

// split makes RPCs from a few concurrent callers until n have been
// answered (at most 5/4 n attempts, so a transient failure, such as a
// connection reset on a loaded machine, neither hides in the share nor
// fails the measurement) and counts the answers by version.
func split(t *testing.T, c *demoapp.Client, n int) (counts map[string]int, errs int) {
	t.Helper()
	var mu sync.Mutex
	counts = map[string]int{}
	attempts := 0
	var firstErr error
	next := func() bool { // claims one attempt while answers are missing
		mu.Lock()
		defer mu.Unlock()
		if attempts-errs >= n || attempts >= n*5/4 { // answered or in flight: enough
			return false
		}
		attempts++
		return true
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, err := c.Call(ctx)
				cancel()
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					counts[v]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Logf("%d RPC errors (retried), first: %v", errs, firstErr)
	}
	return counts, errs
}

// share is the percentage of answers that came from v1.
func share(counts map[string]int) float64 {
	total := counts["v1"] + counts["v2"]
	if total == 0 {
		return 0
	}
	return 100 * float64(counts["v1"]) / float64(total)
}

func dial(t *testing.T, c *testbed.Canary, node string) *demoapp.Client {
	t.Helper()
	client, err := demoapp.Dial("xds:///my-app", c.GRPCBootstrap(t, node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// waitServing waits until the client gets answers (xDS config delivered,
// backends serving).
func waitServing(t *testing.T, client *demoapp.Client) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = client.Call(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no successful RPC within 15s: %v", err)
}

func TestCanarySplitAndLiveShift(t *testing.T) {
	c := testbed.StartCanary(t)
	client := dial(t, c, "e2e-client.default")
	waitServing(t, client)

	counts, errs := split(t, client, 4000)
	got := share(counts)
	t.Logf("90/10: v1 %d, v2 %d, errors %d -> v1 share %.2f%%", counts["v1"], counts["v2"], errs, got)
	if counts["v1"]+counts["v2"] < 4000 {
		t.Fatalf("only %d RPCs answered in 5000 attempts", counts["v1"]+counts["v2"])
	}
	if got < 87 || got > 93 {
		t.Fatalf("v1 share %.2f%%, want 90 ± 3", got)
	}

	// Edit the YAML; the same client must follow within 2 s, no restart.
	start := time.Now()
	c.SetWeights(t, 50, 50)
	followed := false
	for time.Since(start) < 2*time.Second {
		counts, _ := split(t, client, 200)
		if s := share(counts); s > 35 && s < 65 {
			followed = true
			break
		}
	}
	took := time.Since(start)
	if !followed {
		t.Fatalf("the client did not follow the 50/50 edit within 2s")
	}
	t.Logf("followed the 50/50 edit %v after the file was written", took.Round(time.Millisecond))

	counts, errs = split(t, client, 4000)
	got = share(counts)
	t.Logf("50/50: v1 %d, v2 %d, errors %d -> v1 share %.2f%%", counts["v1"], counts["v2"], errs, got)
	if got < 47 || got > 53 {
		t.Fatalf("v1 share %.2f%% after the edit, want 50 ± 3", got)
	}

	// Roll back: everything to v1, at once.
	c.SetWeights(t, 100, 0)
	waitShare(t, client, func(s float64) bool { return s == 100 }, "100% v1 after the rollback")
}

// waitShare polls the split until cond holds, for up to 2 s.
func waitShare(t *testing.T, client *demoapp.Client, cond func(float64) bool, what string) {
	t.Helper()
	start := time.Now()
	var last map[string]int
	for time.Since(start) < 2*time.Second {
		last, _ = split(t, client, 100)
		if cond(share(last)) {
			t.Logf("%s reached %v after the edit", what, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	t.Fatalf("%s: not reached within 2s (last counts %v)", what, last)
}

func TestInvalidEditKeepsTheLastGoodSplit(t *testing.T) {
	c := testbed.StartCanary(t)
	client := dial(t, c, "e2e-client.default")
	waitServing(t, client)
	c.SetWeights(t, 0, 100)
	waitShare(t, client, func(s float64) bool { return s == 0 }, "100% v2")

	// Weights that do not sum to 100: the edit is rejected, and the last
	// good VirtualService (all to v2) keeps being served. Without that, the
	// service would fall back to its default route and v1 would get half.
	c.SetWeights(t, 70, 20)
	time.Sleep(300 * time.Millisecond) // the debounce ceiling is 100 ms: time for a wrong push to arrive
	counts, errs := split(t, client, 400)
	if counts["v2"] != 400 {
		t.Fatalf("after a bad edit: %v, %d errors; want all 400 calls still on v2", counts, errs)
	}

	// Fixing the file applies the fix.
	c.SetWeights(t, 100, 0)
	waitShare(t, client, func(s float64) bool { return s == 100 }, "100% v1 after the fix")
}
