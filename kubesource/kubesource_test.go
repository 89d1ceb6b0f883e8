package kubesource

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/minimesh/minimesh/runner"
)

var _ runner.ClusterConfig = Config{}

// TestOpenNeedsAnAPIServer: without an API server configuration there is
// nothing to open, and the error says so. (Opening a real cluster is
// e2e/kube_test.go's, against a real API server.)
func TestOpenNeedsAnAPIServer(t *testing.T) {
	c, err := Config{}.Open(context.Background(), runner.Config{})
	if err == nil || !strings.Contains(err.Error(), "no API server configuration") {
		t.Fatalf("Open = %v, %v; want the missing API server named", c, err)
	}
}

// TestServiceNames: the serving certificate carries every name a proxy in
// the cluster may reach minimesh's Service by.
func TestServiceNames(t *testing.T) {
	s := &source{cfg: Config{ServiceName: "minimesh", Namespace: "mesh"}}
	want := []string{"minimesh", "minimesh.mesh", "minimesh.mesh.svc", "minimesh.mesh.svc.example.org"}
	if got := s.ServiceNames("example.org"); !slices.Equal(got, want) {
		t.Errorf("ServiceNames = %v, want %v", got, want)
	}
}
