package cache

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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
// own (its subscription is the one interned list that every proxy asking
// for the same names shares), and moving to a set that differs in one resource compares one name,
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
		st  *DeltaState
		out chan *DeltaResponse
	}
	var proxies []proxy
	for _, id := range nodes {
		node := &corev3.Node{Id: id}
		out := make(chan *DeltaResponse, 10)
		// Each proxy's request is a list of its own: the stream keeps
		// the one interned list.
		req := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: slices.Clone(names)}
		st := NewDeltaState(resourcev3.EndpointType)
		c.WatchDelta(id, st, req, func(r *DeltaResponse) { out <- r })
		resp := <-out
		if got := len(resp.resources); got != n {
			t.Fatalf("%s: first response has %d resources, want %d", id, got, n)
		}
		ack := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResponseNonce: "1"}
		c.WatchDelta(id, st, ack, func(r *DeltaResponse) { out <- r })
		if st.base != first.sets[resourcev3.EndpointType] || st.over != nil || st.watch == nil {
			t.Fatalf("%s: stream state after the ACK: %+v; want the proxy's set as base, no exceptions, a watch open", id, st)
		}
		if len(proxies) > 0 && proxies[0].st.names != st.names {
			t.Errorf("%s: subscribes to the same names as %s, but through a list of its own", id, nodes[0])
		}
		proxies = append(proxies, proxy{st, out})
	}

	second := publishAll("10.1.0.3")
	set := second.sets[resourcev3.EndpointType]
	for i, p := range proxies {
		resp := <-p.out
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
