package cache

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestNewMemoFromReusesEncodings: a message the previous memo encoded is
// not encoded again, and only one generation is kept.
func TestNewMemoFromReusesEncodings(t *testing.T) {
	c := &clusterv3.Cluster{Name: "inbound|8080||"}
	first := NewMemo()
	e1 := first.encode(c)
	second := NewMemoFrom(first)
	if second.encode(c) != e1 {
		t.Error("the same message was encoded again")
	}
	other := &clusterv3.Cluster{Name: "inbound|9090||"}
	if second.encode(other) == e1 {
		t.Error("another message got the first one's encoding")
	}
	third := NewMemoFrom(second)
	if second.prev != nil {
		t.Error("the memo keeps more than one generation back")
	}
	if third.encode(c) != e1 {
		t.Error("an encoding used in the last generation was lost")
	}
}

// TestEqualContentSharesChecks: a new message with the content of one the
// previous memo checked shares its wire form and its verdict; a message of
// other content does not.
func TestEqualContentSharesChecks(t *testing.T) {
	// Invalid (a cluster needs a name), so the verdict is visible.
	bad := func() *clusterv3.Cluster { return &clusterv3.Cluster{ConnectTimeout: nil, AltStatName: "x"} }
	first := NewMemo()
	a := bad()
	wantErr := first.validate(a)
	if wantErr == nil {
		t.Fatal("the test cluster is valid; make it invalid")
	}
	second := NewMemoFrom(first)
	b := bad()
	eb := second.encode(b)
	if eb.twin != first.encode(a) || eb.wire != first.encode(a).wire {
		t.Error("an equal message did not share the earlier one's wire form")
	}
	if err := second.validate(b); err == nil || err.Error() != wantErr.Error() {
		t.Errorf("an equal message was validated again: %v, want the earlier verdict %v", err, wantErr)
	}
	c := &clusterv3.Cluster{Name: "other"}
	if ec := second.encode(c); ec.twin != nil || second.validate(c) != nil {
		t.Errorf("a message of other content shares checks (twin %v) or is invalid (%v)", ec.twin != nil, second.validate(c))
	}
}

// TestNewMemoFromKeepsSetsOfSameContent: a set of the same content as one
// the previous memo built, from new messages and a new run key, is that
// very set; a set of other content is not.
func TestNewMemoFromKeepsSetsOfSameContent(t *testing.T) {
	lists := func(names ...string) mapLists {
		var out []types.Resource
		for _, n := range names {
			out = append(out, &clusterv3.Cluster{Name: n})
		}
		return mapLists{resourcev3.ClusterType: out}
	}
	runOf := func(key any, l mapLists) []Run {
		return []Run{{Key: key, Start: 1, End: len(l[resourcev3.ClusterType])}}
	}
	first := NewMemo()
	l1 := lists("inbound|8080||", "outbound|80||a", "outbound|80||b")
	s1 := first.typeSet(resourcev3.ClusterType, l1, runOf(new(int), l1))

	second := NewMemoFrom(first)
	l2 := lists("inbound|8080||", "outbound|80||a", "outbound|80||b")
	if s2 := second.typeSet(resourcev3.ClusterType, l2, runOf(new(int), l2)); s2 != s1 {
		t.Error("a set of the same content was built again")
	}
	l3 := lists("inbound|8080||", "outbound|80||a", "outbound|80||c")
	if s3 := second.typeSet(resourcev3.ClusterType, l3, runOf(new(int), l3)); s3 == s1 {
		t.Error("a set of other content is the earlier set")
	}
}
