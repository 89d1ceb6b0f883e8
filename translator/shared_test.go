package translator

import (
	"os"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Two sidecars translated from one index share their outbound clusters,
// endpoints, listener and routes, and the runs marked say exactly where.
func TestSharedRunsAreMarked(t *testing.T) {
	in, err := os.ReadFile("testdata/in/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap := buildSnapshot(t, string(in))
	ix := NewIndex(snap, Options{})
	var got [2]*Resources
	for i, id := range []string{"client.default", "other-client.default"} {
		res, err := ix.Translate(ix.NewProxy(envoyNode(id, ""), "default"))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got[i] = res
	}
	lists := func(r *Resources, typeURL string) []any {
		var out []any
		for _, m := range r.ByType()[typeURL] {
			out = append(out, m)
		}
		return out
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType} {
		a, b := got[0].SharedRuns(typ), got[1].SharedRuns(typ)
		if len(a) == 0 {
			t.Errorf("%s: no shared run marked", typ)
			continue
		}
		if len(a) != len(b) {
			t.Fatalf("%s: runs %v and %v", typ, a, b)
		}
		la, lb := lists(got[0], typ), lists(got[1], typ)
		for i := range a {
			if a[i].Key != b[i].Key {
				t.Errorf("%s run %d: keys differ between two sidecars of one index", typ, i)
			}
			for j := a[i].Start; j < a[i].End; j++ {
				k := b[i].Start + j - a[i].Start
				if la[j] != lb[k] {
					t.Errorf("%s run %d: message %d is not the same message for both sidecars", typ, i, j)
				}
			}
		}
	}
	// Another index: nothing matches.
	ix2 := NewIndex(snap, Options{})
	other, err := ix2.Translate(ix2.NewProxy(envoyNode("client.default", ""), "default"))
	if err != nil {
		t.Fatal(err)
	}
	if other.SharedRuns(resourcev3.ClusterType)[0].Key == got[0].SharedRuns(resourcev3.ClusterType)[0].Key {
		t.Error("runs of two indexes have the same key")
	}
}
