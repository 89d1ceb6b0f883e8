package runner

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/minimesh/minimesh/internal/testlog"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/internal/synth"
	"github.com/minimesh/minimesh/mesh"
)

func build(t *testing.T, yaml string) *mesh.Snapshot {
	t.Helper()
	objs, diags, err := mesh.Decode("test.yaml", []byte(yaml), "default")
	if err != nil {
		t.Fatal(err)
	}
	snap, more := mesh.Build(objs, mesh.Options{})
	for _, d := range append(diags, more...) {
		if d.Severity == mesh.SeverityError {
			t.Fatal(d)
		}
	}
	return snap
}

func grpcNode(id string) *corev3.Node { return &corev3.Node{Id: id, UserAgentName: "gRPC Go"} }

// TestOnlyAffectedProxiesArePushed: two gRPC clients of different services;
// a weight change of one service changes only its client's routes.
func TestOnlyAffectedProxiesArePushed(t *testing.T) {
	base := string(synth.YAML(2, "default"))
	c := cache.New(nil)
	r := New(c, testlog.New(t), Options{DefaultNamespace: "default"})
	r.Update(context.Background(), build(t, base))

	for id, target := range map[string]string{"a.default": "svc-0000", "b.default": "svc-0001"} {
		if err := r.Connect(grpcNode(id)); err != nil {
			t.Fatal(err)
		}
		r.Listeners(grpcNode(id), []string{target})
	}
	before := map[string]map[string]string{"a.default": c.Get("a.default").Versions(), "b.default": c.Get("b.default").Versions()}
	if len(c.Get("a.default").GetResources(resourcev3.ListenerType)) != 1 {
		t.Fatal("client a did not get its listener")
	}

	// Shift svc-0000 to 50/50: the first VirtualService in the file.
	edited := strings.Replace(base, "weight: 90}", "weight: 50}", 1)
	edited = strings.Replace(edited, "weight: 10}", "weight: 50}", 1)
	publishes := r.Stats().Publishes
	r.Update(context.Background(), build(t, edited))

	after := map[string]map[string]string{"a.default": c.Get("a.default").Versions(), "b.default": c.Get("b.default").Versions()}
	for typ := range before["b.default"] {
		if before["b.default"][typ] != after["b.default"][typ] {
			t.Errorf("client b (svc-0001) got a new %s version for a change of svc-0000", typ)
		}
	}
	for typ := range before["a.default"] {
		changed := before["a.default"][typ] != after["a.default"][typ]
		if changed != (typ == resourcev3.RouteType) {
			t.Errorf("client a: %s changed = %v, want only the route configuration to change", typ, changed)
		}
	}
	if got := r.Stats().Publishes - publishes; got != 1 {
		t.Errorf("%d proxies published, want 1", got)
	}
}

// TestUnknownNodeIsAnOutOfMeshClient: a node ID that names no workload gets
// outbound config only; a workload's sidecar gets its inbound listener too.
func TestUnknownNodeIsAnOutOfMeshClient(t *testing.T) {
	c := cache.New(nil)
	r := New(c, testlog.New(t), Options{DefaultNamespace: "default"})
	r.Update(context.Background(), build(t, string(synth.YAML(1, "default"))))
	if err := r.Connect(&corev3.Node{Id: "stranger.default", UserAgentName: "envoy"}); err != nil {
		t.Fatal(err)
	}
	snap := c.Get("stranger.default")
	if snap == nil {
		t.Fatal("no snapshot published for an unknown node")
	}
	listeners := snap.GetResources(resourcev3.ListenerType)
	if len(listeners) != 1 || listeners["127.0.0.1_15001"] == nil {
		t.Fatalf("an out-of-mesh Envoy gets listeners %v, want only the outbound 127.0.0.1_15001", keys(listeners))
	}
	if err := r.Connect(&corev3.Node{Id: "svc-0000-v1.default", UserAgentName: "envoy"}); err != nil {
		t.Fatal(err)
	}
	if got := c.Get("svc-0000-v1.default").GetResources(resourcev3.ListenerType); len(got) != 2 {
		t.Fatalf("the sidecar of svc-0000-v1 gets listeners %v, want outbound and inbound", keys(got))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
