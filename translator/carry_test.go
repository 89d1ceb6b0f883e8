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
