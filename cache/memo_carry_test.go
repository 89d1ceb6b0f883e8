package cache

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
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
