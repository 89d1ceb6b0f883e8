package runner

import (
	"context"
	"testing"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/internal/synth"
	"github.com/minimesh/minimesh/internal/testlog"
)

// TestUpdateWarmsUpWhenNoProxyIsConnected: a mesh installed while no
// proxy is connected (a server starting) has what proxies share prepared
// in its memo before the first one connects; nothing is published and no
// certificate issued for it.
func TestUpdateWarmsUpWhenNoProxyIsConnected(t *testing.T) {
	ca, err := certs.LoadOrCreate(certs.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(nil)
	r := New(c, testlog.New(t), Options{DefaultNamespace: "default", CA: ca})
	r.Update(context.Background(), build(t, string(synth.YAML(3, "default"))))
	if n := r.memo.SharedRuns(); n == 0 {
		t.Fatal("after an update with no proxy connected, the memo has no shared run prepared: no warm-up")
	}
	for _, id := range []string{"minimesh-warm-up", r.mesh.Workloads[0].ID()} {
		if c.Get(id) != nil {
			t.Errorf("the warm-up published a snapshot for %s; want none", id)
		}
	}
	if _, issued := r.store.NextRefresh(); issued {
		t.Error("the warm-up issued a certificate; want none before a proxy connects")
	}
}
