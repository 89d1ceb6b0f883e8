package docker

import (
	"testing"

	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher/file"
)

// inboundPort is where each sidecar receives requests for my-app (the
// ServiceEntry's targetPort).
const inboundPort = 8080

// TestMutualTLSIsOn reads config/ as `minimesh serve` does and checks that
// the example runs with mTLS between the sidecars: every sidecar's workload
// is marked as having one (so the others call it with mTLS), and the
// mesh-wide PeerAuthentication makes its inbound port STRICT.
func TestMutualTLSIsOn(t *testing.T) {
	snap, problems, err := file.New(file.Config{Dir: "config"}).Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("config/: %v", p)
	}
	workloads := map[string]*mesh.Workload{}
	for _, w := range snap.Workloads {
		workloads[w.ID()] = w
	}
	for service, nodeID := range sidecars {
		w, ok := workloads[nodeID]
		if !ok {
			t.Errorf("service %s: no WorkloadEntry for node %s in config/", service, nodeID)
			continue
		}
		if got := w.Labels["security.istio.io/tlsMode"]; got != "istio" {
			t.Errorf("WorkloadEntry %s: label security.istio.io/tlsMode = %q, want istio (it has a sidecar)", nodeID, got)
		}
		if got := snap.MTLSMode(w, inboundPort); got != mesh.MTLSStrict {
			t.Errorf("WorkloadEntry %s: mTLS mode on port %d = %s, want %s", nodeID, inboundPort, got, mesh.MTLSStrict)
		}
	}
}
