package docker

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/bootstrap"
)

var update = flag.Bool("update", false, "regenerate the Envoy bootstrap files examples/docker/envoy-*.yaml")

// sidecars maps each Envoy service in docker-compose.yaml to the node ID of
// the workload it serves, the name of a WorkloadEntry in config/.
var sidecars = map[string]string{
	"envoy-v1":     "my-app-v1.default",
	"envoy-v2":     "my-app-v2.default",
	"envoy-client": "client.default",
}

const (
	// xdsAddress is where the sidecars find minimesh: its compose service.
	xdsAddress = "minimesh:15010"
	// bootstrapTarget is where each Envoy container reads its bootstrap.
	bootstrapTarget = "/etc/envoy/envoy.yaml"
	// outboundProxy is the sidecar's outbound listener, in explicit mode.
	outboundProxy = "http://127.0.0.1:15001"
)

// sidecarBootstrap is the one way to write a sidecar's bootstrap file. xDS
// is plaintext here (minimesh bootstrap --insecure-xds): TLS for xDS would
// need each sidecar's certificate issued before its container starts (see
// docker-compose.yaml). mTLS between the sidecars does not depend on it:
// their certificates come over SDS.
func sidecarBootstrap(nodeID string) ([]byte, error) {
	return bootstrap.EnvoyYAML(bootstrap.EnvoyOptions{NodeID: nodeID, XDSAddress: xdsAddress, Delta: true})
}

func TestEverySidecarIsKnown(t *testing.T) {
	got := loadCompose(t).envoyServices()
	slices.Sort(got)
	var want []string
	for name := range sidecars {
		want = append(want, name)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Envoy services in docker-compose.yaml (-want +got):\n%s", diff)
	}
}

// TestEnvoyBootstrapFiles reads each sidecar's bootstrap as Envoy would and
// checks that it is exactly what minimesh generates for its node.
func TestEnvoyBootstrapFiles(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.envoyServices() {
		t.Run(name, func(t *testing.T) {
			s := c.Services[name]
			if want := []string{"-c", bootstrapTarget}; !slices.Equal(s.Command, want) {
				t.Errorf("command = %q, want %q", s.Command, want)
			}
			source := s.mount(bootstrapTarget)
			if source == "" {
				t.Fatalf("nothing is mounted at %s", bootstrapTarget)
			}
			path := filepath.Join(repoRoot, source)
			nodeID := sidecars[name]
			want, err := sidecarBootstrap(nodeID)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./examples/docker -update` to generate it)", err)
			}
			b := decodeBootstrap(t, source, got)
			if b.GetNode().GetId() != nodeID {
				t.Errorf("%s: node.id = %q, want %q", source, b.GetNode().GetId(), nodeID)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s is not what `minimesh bootstrap` generates (-want +got); run `go test ./examples/docker -update`:\n%s", source, diff)
			}
		})
	}
}

// decodeBootstrap parses an Envoy bootstrap file as Envoy does (YAML to JSON
// to proto, unknown fields refused) and validates it.
func decodeBootstrap(t *testing.T, path string, data []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatalf("%s: not an Envoy bootstrap: %v", path, err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	return b
}

// TestSidecarAddresses checks that each sidecar runs in the network namespace
// of a container whose fixed IP is its WorkloadEntry's address: that is the
// address its inbound listener binds.
func TestSidecarAddresses(t *testing.T) {
	c := loadCompose(t)
	addresses := workloadAddresses(t)
	for _, name := range c.envoyServices() {
		owner := c.Services[name].sharedNamespace()
		if owner == "" {
			t.Errorf("service %s: network_mode = %q, want service:<its app>", name, c.Services[name].NetworkMode)
			continue
		}
		nodeID := sidecars[name]
		want, ok := addresses[nodeID]
		if !ok {
			t.Errorf("service %s: no WorkloadEntry for node %s in config/", name, nodeID)
			continue
		}
		if got := c.Services[owner].Networks[meshNetwork].IPv4Address; got != want {
			t.Errorf("service %s: shares %s's address %q, but WorkloadEntry %s has %q", name, owner, got, nodeID, want)
		}
	}
}

// TestMinimeshService checks that the sidecars can reach minimesh where
// their bootstraps say it is, and that it serves the example's config.
func TestMinimeshService(t *testing.T) {
	host, port, _ := net.SplitHostPort(xdsAddress)
	s, ok := loadCompose(t).Services[host]
	if !ok {
		t.Fatalf("the bootstraps point at %s, but there is no service %q", xdsAddress, host)
	}
	if !hasFlag(s.Command, "--xds-address", "0.0.0.0:"+port) {
		t.Errorf("service %s: command %q does not serve xDS on port %s", host, s.Command, port)
	}
	if !hasFlag(s.Command, "--config-dir", "/config") || s.mount("/config") != "./examples/docker/config" {
		t.Errorf("service %s: does not serve ./examples/docker/config", host)
	}
	// The sidecars' bootstraps speak plaintext xDS; minimesh serves TLS
	// unless told otherwise.
	if !slices.Contains(s.Command, "--insecure-xds") {
		t.Errorf("service %s: command %q lacks --insecure-xds, but the sidecars' bootstraps use plaintext xDS", host, s.Command)
	}
}

// TestClientUsesItsSidecar checks that the client's requests go through the
// outbound listener of its sidecar.
func TestClientUsesItsSidecar(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if slices.Contains(s.Command, "-client") {
			if got := s.Environment["HTTP_PROXY"]; got != outboundProxy {
				t.Errorf("service %s: HTTP_PROXY = %q, want %q", name, got, outboundProxy)
			}
		}
	}
}

// hasFlag reports whether args hold flag followed by value.
func hasFlag(args []string, flag, value string) bool {
	i := slices.Index(args, flag)
	return i >= 0 && i+1 < len(args) && args[i+1] == value
}
