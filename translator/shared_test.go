package translator

import (
	"os"
	"slices"
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

// sortSlice compares only outside the marked runs and at their edges: a
// list sorted but for a run is taken as sorted (the run is trusted), and
// anything out of order elsewhere, or at a run's edge, is sorted.
func TestSortSliceSkipsRuns(t *testing.T) {
	id := func(s string) string { return s }
	cases := []struct {
		list   []string
		runs   []SharedRun
		sorted bool // sortSlice sorted it
	}{
		{[]string{"a", "b", "c", "d"}, nil, false},
		{[]string{"b", "a", "c", "d"}, nil, true},
		// The run [1,3) is not itself in order, and is trusted.
		{[]string{"a", "c", "b", "d"}, []SharedRun{{Start: 1, End: 3}}, false},
		// Out of order after the run.
		{[]string{"a", "b", "c", "e", "d"}, []SharedRun{{Start: 1, End: 3}}, true},
		// At the run's left and right edges.
		{[]string{"c", "b", "d", "e"}, []SharedRun{{Start: 1, End: 3}}, true},
		{[]string{"a", "b", "e", "d"}, []SharedRun{{Start: 1, End: 3}}, true},
		// Two runs, and overlapping ones.
		{[]string{"a", "c", "b", "d", "f", "e", "g"}, []SharedRun{{Start: 1, End: 3}, {Start: 4, End: 6}}, false},
		{[]string{"a", "c", "b", "f", "e", "g"}, []SharedRun{{Start: 1, End: 4}, {Start: 2, End: 5}}, false},
		{[]string{"a", "c", "b", "f", "e", "g", "a"}, []SharedRun{{Start: 1, End: 4}, {Start: 2, End: 5}}, true},
	}
	for _, c := range cases {
		r := &Resources{shared: map[string][]SharedRun{"t": c.runs}}
		list := slices.Clone(c.list)
		if got := sortSlice(r, "t", list, id); got != c.sorted {
			t.Errorf("%v with runs %v: sorted %v, want %v", c.list, c.runs, got, c.sorted)
		}
		if c.sorted && !slices.IsSorted(list) {
			t.Errorf("%v: sorted into %v", c.list, list)
		}
		if c.sorted && r.shared["t"] != nil {
			t.Errorf("%v: the marks of a sorted list are kept", c.list)
		}
	}
}
