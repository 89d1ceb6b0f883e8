package translator

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/minimesh/minimesh/internal/synth"
)

// TestNewIndexFromCarriesUnchangedMessages: after a change that does not
// touch a workload, its inbound listener and secrets are the very same
// messages as before (so nothing downstream redoes them); after a change
// that does (its mTLS mode), they are new.
func TestNewIndexFromCarriesUnchangedMessages(t *testing.T) {
	data, err := os.ReadFile("testdata/in/mtls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	first := NewIndex(buildSnapshot(t, text), Options{})
	cert := &Certificate{ChainPEM: []byte("chain"), KeyPEM: []byte("key")}
	translate := func(ix Index, id string) *Resources {
		t.Helper()
		p := ix.NewProxy(envoyNode(id, ""), "default")
		if p.Workload == nil {
			t.Fatalf("%s is no workload of testdata/in/mtls.yaml", id)
		}
		p.Certificate, p.TrustBundlePEM = cert, []byte("roots")
		res, err := ix.Translate(p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	const id = "cart-0.shop" // under the mesh-wide mode (but for one port)
	before := translate(first, id)

	// The same mesh again (a change elsewhere): carried over.
	second := NewIndexFrom(buildSnapshot(t, text), Options{}, first)
	again := translate(second, id)
	if before.Listeners[0] != again.Listeners[0] || before.Secrets[0] != again.Secrets[0] {
		t.Error("an unchanged workload's inbound listener or secret was rebuilt")
	}
	// Its own certificate re-issued: new secrets.
	cert = &Certificate{ChainPEM: []byte("chain2"), KeyPEM: []byte("key2")}
	if renewed := translate(second, id); renewed.Secrets[0] == again.Secrets[0] {
		t.Error("a re-issued certificate kept the old secret")
	}
	// The mesh-wide mode changes from STRICT to DISABLE: every workload
	// outside legacy gets new inbound listeners.
	disabled := strings.Replace(text, "mtls: {mode: STRICT}", "mtls: {mode: DISABLE}", 1)
	third := NewIndexFrom(buildSnapshot(t, disabled), Options{}, second)
	changed := translate(third, id)
	if changed.Listeners[0] == again.Listeners[0] {
		t.Errorf("%s: the inbound listener was carried over although its mode changed", id)
	}
	if changed.Listeners[0].String() == again.Listeners[0].String() {
		t.Errorf("%s: pick a workload whose inbound listener depends on the mesh-wide mode", id)
	}
}

// TestEndpointChangeKeepsWhatItDoesNotTouch: after a change of endpoints
// only, a Sidecar-scoped proxy gets the very same route configuration
// message as before, and the very same clusters and endpoints of the
// services whose endpoints did not change, while the changed service's
// endpoints are new; after a VirtualService change, a new route
// configuration.
func TestEndpointChangeKeepsWhatItDoesNotTouch(t *testing.T) {
	data, err := os.ReadFile("testdata/in/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	const id = "frontend-0.shop"
	translate := func(ix Index) *Resources {
		t.Helper()
		res, err := ix.Translate(ix.NewProxy(envoyNode(id, ""), "shop"))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Routes) == 0 {
			t.Fatalf("%s gets no route configuration", id)
		}
		return res
	}
	first := NewIndex(buildSnapshot(t, text), Options{})
	before := translate(first)

	moved := strings.Replace(text, "address: 10.0.0.3,", "address: 10.0.0.33,", 1) // reviews v2 moves
	second := NewIndexFrom(buildSnapshot(t, moved), Options{}, first)
	after := translate(second)
	if after.Routes[0] != before.Routes[0] {
		t.Error("an endpoint change rebuilt the route configuration")
	}
	if !strings.Contains(endpointsText(after), "10.0.0.33") || strings.Contains(endpointsText(after), "10.0.0.3\"") {
		t.Errorf("the endpoints did not follow the change: %s", endpointsText(after))
	}
	// What is carried over is what a new index builds from scratch.
	fresh := translate(NewIndex(buildSnapshot(t, moved), Options{}))
	if !proto.Equal(fresh.Routes[0], after.Routes[0]) || len(fresh.Clusters) != len(after.Clusters) || len(fresh.Endpoints) != len(after.Endpoints) {
		t.Fatal("the route configuration or the cluster lists taken over differ from those built anew")
	}
	for i := range fresh.Clusters {
		if !proto.Equal(fresh.Clusters[i], after.Clusters[i]) {
			t.Errorf("cluster %s taken over differs from the one built anew", after.Clusters[i].GetName())
		}
	}
	for i := range fresh.Endpoints {
		if !proto.Equal(fresh.Endpoints[i], after.Endpoints[i]) {
			t.Errorf("endpoints %s taken over differ from those built anew", after.Endpoints[i].GetClusterName())
		}
	}
	kept, rebuilt := 0, 0
	for i, c := range after.Clusters {
		if c.GetName() != before.Clusters[i].GetName() {
			t.Fatalf("cluster %d is %s, was %s", i, c.GetName(), before.Clusters[i].GetName())
		}
		switch {
		case strings.Contains(c.GetName(), "|reviews."):
			if c == before.Clusters[i] {
				t.Errorf("%s: the cluster of the service whose endpoints changed was kept", c.GetName())
			}
			rebuilt++
		case strings.HasPrefix(c.GetName(), "outbound|"):
			if c != before.Clusters[i] {
				t.Errorf("%s: rebuilt although its service's endpoints did not change", c.GetName())
			}
			kept++
		}
	}
	if kept == 0 || rebuilt == 0 {
		t.Errorf("%d outbound clusters kept and %d rebuilt; the test needs some of each", kept, rebuilt)
	}

	reweighted := strings.Replace(moved, "weight: 90}", "weight: 80}", 1)
	reweighted = strings.Replace(reweighted, "weight: 10}", "weight: 20}", 1)
	third := NewIndexFrom(buildSnapshot(t, reweighted), Options{}, second)
	changed := translate(third)
	if changed.Routes[0] == after.Routes[0] || changed.Routes[0].String() == after.Routes[0].String() {
		t.Error("a VirtualService change kept the old route configuration")
	}
}

func endpointsText(res *Resources) string {
	var b strings.Builder
	for _, cla := range res.Endpoints {
		b.WriteString(cla.String())
	}
	return b.String()
}

// BenchmarkEndpointChangeIndex: the index after a workload is added to one
// service of a 1000-service mesh, built from the index before it (which
// carries over the clusters and routes of everything else), as the
// runner does on every endpoint change. The index before has translated
// one proxy, so that its memo holds the clusters to carry.
func BenchmarkEndpointChangeIndex(b *testing.B) {
	o := synth.Options{Services: 1000, Namespace: "default"}
	objs := synth.Generate(o)
	before := buildSnapshot(b, string(synth.Join(objs)))
	added := synth.WorkloadEntry(synth.Workload{Name: "svc-0000-v1-bench", Namespace: "default",
		Service: synth.ServiceName(0), Version: "v1", Address: "10.254.0.1"})
	after := buildSnapshot(b, string(synth.Join(append(objs, added))))
	prev := NewIndex(before, Options{})
	if _, err := prev.Translate(prev.NewProxy(envoyNode("bench.default", ""), "default")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		NewIndexFrom(after, Options{}, prev)
	}
}
