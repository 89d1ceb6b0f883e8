package cache

import (
	"context"
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// endpointSets is n ClusterLoadAssignments, one run shared by every proxy;
// set number changed has a second endpoint at address extra.
func endpointSets(n, changed int, extra string) (map[string][]types.Resource, map[string][]Run) {
	var list []types.Resource
	for i := range n {
		hosts := []string{"10.1.0.1"}
		if i == changed {
			hosts = append(hosts, extra)
		}
		var lbs []*endpointv3.LbEndpoint
		for _, h := range hosts {
			lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: h, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80}}}}}}})
		}
		list = append(list, &endpointv3.ClusterLoadAssignment{
			ClusterName: fmt.Sprintf("outbound|80||svc-%04d.default.svc.cluster.local", i),
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}},
		})
	}
	return map[string][]types.Resource{resourcev3.EndpointType: list},
		map[string][]Run{resourcev3.EndpointType: {{Key: "eds", Start: 0, End: n}}}
}

// A stream that holds its proxy's whole set keeps no map of names of its
// own, and moving to a set that differs in one resource compares one name,
// the difference being worked out once for every proxy making that move.
func TestDeltaStreamCostFollowsWhatChanged(t *testing.T) {
	const n = 3000
	c := New(nil)
	nodes := []string{"a.default", "b.default"}
	publishAll := func(extra string) *Snapshot {
		byType, runs := endpointSets(n, 42, extra)
		memo := NewMemo()
		var s *Snapshot
		for _, node := range nodes {
			var err error
			if s, err = NewSnapshotShared(byType, runs, memo); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(context.Background(), node, s); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	first := publishAll("10.1.0.2")
	names := make([]string, 0, n)
	names = append(names, first.sets[resourcev3.EndpointType].order...)

	type proxy struct {
		st  *deltaStream
		out chan cachev3.DeltaResponse
	}
	var proxies []proxy
	for _, id := range nodes {
		node := &corev3.Node{Id: id}
		out := make(chan cachev3.DeltaResponse, 10)
		req := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names}
		sub := stream.NewDeltaSubscription(names, nil, nil, true)
		if _, err := c.XDS().CreateDeltaWatch(req, sub, out); err != nil {
			t.Fatal(err)
		}
		resp := <-out
		if got := len(resp.(*deltaResponse).resources); got != n {
			t.Fatalf("%s: first response has %d resources, want %d", id, got, n)
		}
		sub.SetReturnedResources(resp.GetReturnedResources()) // as the server does
		ack := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResponseNonce: "1"}
		if _, err := c.XDS().CreateDeltaWatch(ack, sub, out); err != nil {
			t.Fatal(err)
		}
		nd := c.node(id)
		st := nd.deltas[resp.GetReturnedResources()[stateKey]].Value()
		if st == nil || st.base != first.sets[resourcev3.EndpointType] || st.over != nil || st.watch == nil {
			t.Fatalf("%s: stream state after the ACK: %+v; want the proxy's set as base, no exceptions, a watch open", id, st)
		}
		if len(resp.GetReturnedResources()) != 1 {
			t.Errorf("%s: the map go-control-plane keeps for the stream has %d entries, want 1", id, len(resp.GetReturnedResources()))
		}
		proxies = append(proxies, proxy{st, out})
	}

	second := publishAll("10.1.0.3")
	set := second.sets[resourcev3.EndpointType]
	for i, p := range proxies {
		resp := (<-p.out).(*deltaResponse)
		if len(resp.resources) != 1 || resp.resources[0].GetName() != names[42] {
			t.Errorf("%s: sent %d resources, want only %s", nodes[i], len(resp.resources), names[42])
		}
		if p.st.base != set || p.st.over != nil {
			t.Errorf("%s: after the change the stream's base is not the new set, or it has exceptions %v", nodes[i], p.st.over)
		}
	}
	if len(set.diffs) != 1 || len(set.diffs[0].changed) != 1 || len(set.diffs[0].removed) != 0 {
		t.Fatalf("the new set keeps %d differences, want one, of one changed name, worked out once for both proxies", len(set.diffs))
	}
}
