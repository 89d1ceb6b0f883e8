package cache

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// TestOneChangedResourceIsEncodedOnce: after a change of one resource that
// many proxies have, the response sending it alone is marshalled for the
// first stream only; every later stream, in either protocol, is sent one
// shared encoding of it (wire.go), which decodes to that resource.
func TestOneChangedResourceIsEncodedOnce(t *testing.T) {
	const n = 100
	c := New(nil)
	nodes := []string{"a.default", "b.default", "c.default"}
	publishAll := func(extra string) {
		byType, runs := endpointSets(n, 42, extra)
		memo := NewMemo()
		for _, node := range nodes {
			s, err := NewSnapshotShared(byType, runs, memo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(context.Background(), node, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishAll("10.1.0.2")
	eds := resourcev3.EndpointType
	names := c.Get(nodes[0]).sets[eds].order
	changed := names[42]

	type sotwStream struct {
		st      SotwState
		version string
	}
	type deltaStream struct {
		st  *DeltaState
		out chan *DeltaResponse
	}
	var sotw []*sotwStream
	var delta []deltaStream
	for _, node := range nodes {
		s := &sotwStream{}
		s.st.Subscribe(names)
		out := make(chan *SotwResponse, 1)
		c.WatchSotw(node, eds, "", s.st, func(r *SotwResponse) { out <- r })
		r := <-out
		s.st.Sent(r)
		s.version = r.Version
		sotw = append(sotw, s)

		d := deltaStream{st: NewDeltaState(eds), out: make(chan *DeltaResponse, 1)}
		id := &corev3.Node{Id: node}
		c.WatchDelta(node, d.st, &discoveryv3.DeltaDiscoveryRequest{Node: id, TypeUrl: eds, ResourceNamesSubscribe: names},
			func(r *DeltaResponse) { d.out <- r })
		<-d.out
		c.WatchDelta(node, d.st, &discoveryv3.DeltaDiscoveryRequest{Node: id, TypeUrl: eds, ResponseNonce: "1"},
			func(r *DeltaResponse) { d.out <- r })
		delta = append(delta, d)
	}

	publishAll("10.1.0.3")
	want := c.Get(nodes[0]).GetResources(eds)[changed]
	var sotwShared, deltaShared []byte
	for i, s := range sotw {
		out := make(chan *SotwResponse, 1)
		c.WatchSotw(nodes[i], eds, s.version, s.st, func(r *SotwResponse) { out <- r })
		r := <-out
		var sent discoveryv3.DiscoveryResponse
		unmarshalSent(t, r.Message(), &sent)
		if len(sent.GetResources()) != 1 {
			t.Fatalf("%s: state of the world sent %d resources, want only %s", nodes[i], len(sent.GetResources()), changed)
		}
		if got, err := sent.GetResources()[0].UnmarshalNew(); err != nil || !proto.Equal(got, want) {
			t.Errorf("%s: state of the world sent %v (%v), want %v", nodes[i], got, err, want)
		}
		sotwShared = checkShared(t, "state of the world, "+nodes[i], i, r.encoded, sotwShared)
	}
	for i, d := range delta {
		r := <-d.out
		var sent discoveryv3.DeltaDiscoveryResponse
		unmarshalSent(t, r.Message(), &sent)
		if len(sent.GetResources()) != 1 || sent.GetResources()[0].GetName() != changed {
			t.Fatalf("%s: delta sent %d resources, want only %s", nodes[i], len(sent.GetResources()), changed)
		}
		if got, err := sent.GetResources()[0].GetResource().UnmarshalNew(); err != nil || !proto.Equal(got, want) {
			t.Errorf("%s: delta sent %v (%v), want %v", nodes[i], got, err, want)
		}
		deltaShared = checkShared(t, "delta, "+nodes[i], i, r.encoded, deltaShared)
	}
}

// unmarshalSent marshals m as the xDS server's codec would be given it and
// decodes the bytes into out.
func unmarshalSent(t *testing.T, m, out proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// checkShared checks that the response to stream i carries no encoding if
// it is the first (it is marshalled as usual), and otherwise the one
// encoding of the earlier streams; it returns that encoding.
func checkShared(t *testing.T, what string, i int, enc, shared []byte) []byte {
	t.Helper()
	switch {
	case i == 0 && enc != nil:
		t.Errorf("%s: the first stream is sent an encoding made for it alone", what)
	case i > 0 && enc == nil:
		t.Errorf("%s: marshalled again, not sent the shared encoding", what)
	case i > 1 && &enc[0] != &shared[0]:
		t.Errorf("%s: sent an encoding of its own, not the one the other streams share", what)
	}
	if shared == nil {
		return enc
	}
	return shared
}
