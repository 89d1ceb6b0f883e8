package envoysim

import (
	"fmt"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Envoys sharing a Decoder share the index of a large response they all
// received, and an Envoy that changes what it holds copies it first: the
// others keep what they received.
func TestSharedIndexIsCopiedBeforeAChange(t *testing.T) {
	d := NewDecoder()
	a, b := New(Config{NodeID: "a", Decoder: d}), New(Config{NodeID: "b", Decoder: d})
	var clusters []*resource
	for i := range minShared + 10 {
		name := fmt.Sprintf("outbound|80||svc-%03d", i)
		clusters = append(clusters, &resource{name: name, eds: name})
	}
	xa, nack := a.collect(clusters)
	xb, _ := b.collect(clusters)
	if nack != "" || xa != xb || !xa.shared {
		t.Fatalf("two Envoys receiving the same %d clusters got indexes %p and %p (shared %v)", len(clusters), xa, xb, xa.shared)
	}
	if small, _ := a.collect(clusters[:2]); small.shared {
		t.Fatal("a response smaller than minShared was shared")
	}

	cds, eds := resourcev3.ClusterType, resourcev3.EndpointType
	for _, e := range []*Envoy{a, b} {
		e.mu.Lock()
		e.replace(cds, xa)
		e.followReferences(cds)
		e.mu.Unlock()
	}
	if got := a.subscribed(eds); len(got) != len(clusters) || &got[0] != &b.subscribed(eds)[0] {
		t.Fatalf("the endpoint sets to fetch were not worked out once for both: %d names", len(got))
	}

	// a receives clusters without the first: whole for CDS, so it
	// installs the new (unshared) index; b is unchanged.
	fewer, _ := a.collect(clusters[1:])
	a.mu.Lock()
	a.replace(cds, fewer)
	a.mu.Unlock()
	if len(a.Names(cds)) != len(clusters)-1 || len(b.Names(cds)) != len(clusters) {
		t.Fatalf("a holds %d clusters, b %d; want %d and %d", len(a.Names(cds)), len(b.Names(cds)), len(clusters)-1, len(clusters))
	}

	// Endpoint sets come partially: merged into a copy of a's own.
	for _, e := range []*Envoy{a, b} {
		e.mu.Lock()
		e.replace(eds, xa) // (any shared index will do: only names matter here)
		e.mu.Unlock()
	}
	changed := &resource{name: clusters[5].name, eds: "changed"}
	one, _ := a.collect([]*resource{changed})
	a.mu.Lock()
	a.replace(eds, one)
	a.mu.Unlock()
	if a.resources[eds][changed.name] != changed {
		t.Fatal("a's partial update was not applied")
	}
	if b.resources[eds][changed.name] != clusters[5] {
		t.Fatal("a's partial update changed what b holds: the shared index was not copied first")
	}
	if a.shared[eds] != nil || b.shared[eds] == nil {
		t.Errorf("after the update a's index shared: %v, b's: %v; want a's own, b's still shared", a.shared[eds] != nil, b.shared[eds] != nil)
	}
}
