package runner

import (
	"context"
	"path/filepath"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/internal/synth"
	"github.com/minimesh/minimesh/internal/testlog"
)

// TestRestartChangesNothing: a restarted control plane (same config, same
// CA directory) gives a proxy exactly the versions it had, secrets included.
func TestRestartChangesNothing(t *testing.T) {
	caDir := t.TempDir()
	snap := build(t, string(synth.YAML(3, "default")))
	node := &corev3.Node{Id: "svc-0001-v2.default", UserAgentName: "envoy"}
	versions := func() map[string]string {
		ca, err := certs.LoadOrCreate(certs.Options{Dir: caDir})
		if err != nil {
			t.Fatal(err)
		}
		c := cache.New(nil)
		r := New(c, testlog.New(t), Options{DefaultNamespace: "default", CA: ca, KeepCertsDir: filepath.Join(caDir, "issued")})
		r.Update(context.Background(), snap)
		if err := r.Connect(node); err != nil {
			t.Fatal(err)
		}
		return c.Get(node.GetId()).Versions()
	}
	before, after := versions(), versions()
	for typ, v := range before {
		if after[typ] != v {
			t.Errorf("%s: version %s before the restart, %s after", typ, v, after[typ])
		}
	}
	if len(before) != 5 {
		t.Fatalf("versions of %d types, want 5", len(before))
	}
}
