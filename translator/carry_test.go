package translator

import (
	"os"
	"strings"
	"testing"
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

// TestNewIndexFromCarriesEqualSharedMessages: the outbound clusters,
// endpoints and route configuration a new index builds are the previous
// index's very messages where they are equal, and new ones where not.
func TestNewIndexFromCarriesEqualSharedMessages(t *testing.T) {
	data, err := os.ReadFile("testdata/in/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	translate := func(ix Index) *Resources {
		t.Helper()
		res, err := ix.Translate(ix.NewProxy(envoyNode("client.default", ""), "default"))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := NewIndex(buildSnapshot(t, text), Options{})
	before := translate(first)
	if len(before.Clusters) == 0 || len(before.Endpoints) == 0 || len(before.Routes) == 0 {
		t.Fatal("client.default gets no outbound clusters, endpoints or routes")
	}

	// The same mesh, translated anew: every shared message is carried.
	second := NewIndexFrom(buildSnapshot(t, text), Options{}, first)
	again := translate(second)
	for i := range before.Clusters {
		if before.Clusters[i] != again.Clusters[i] {
			t.Errorf("cluster %s was not carried over", before.Clusters[i].GetName())
		}
	}
	for i := range before.Endpoints {
		if before.Endpoints[i] != again.Endpoints[i] {
			t.Errorf("endpoints of %s were not carried over", before.Endpoints[i].GetClusterName())
		}
	}
	if before.Routes[0] != again.Routes[0] {
		t.Error("the route configuration was not carried over")
	}

	// New weights: a new route configuration, the same clusters.
	if !strings.Contains(text, "weight: 90") {
		t.Fatal("testdata/in/canary.yaml has no weight 90 to change")
	}
	shifted := strings.Replace(strings.Replace(text, "weight: 90", "weight: 80", 1), "weight: 10", "weight: 20", 1)
	third := NewIndexFrom(buildSnapshot(t, shifted), Options{}, second)
	changed := translate(third)
	if changed.Routes[0] == again.Routes[0] || changed.Routes[0].String() == again.Routes[0].String() {
		t.Error("the route configuration of new weights is the old one")
	}
	if changed.Clusters[0] != again.Clusters[0] {
		t.Error("a cluster the weights do not touch was rebuilt")
	}
}
