package translator

import (
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Resources is everything one proxy gets, per xDS type, each list sorted by
// resource name.
type Resources struct {
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Secrets   []*tlsv3.Secret

	// shared marks, per type URL, the runs of the lists above that the
	// index built once and hands to many proxies (see SharedRuns).
	shared map[string][]SharedRun
}

// SharedRun marks a run of one type's list, [Start, End), made of messages
// that the index built once and gives, the very same ones in the same
// order, to every proxy whose run has the same Key. The cache uses it to
// hash, validate and index such a run once for all those proxies instead of
// once per proxy. Key is comparable and means something only within one
// Index: runs of proxies translated from different indexes never match.
type SharedRun struct {
	Key        any
	Start, End int
}

// SharedRuns returns the shared runs of one type's list (by type URL, as in
// ByType), ordered by Start; nil if nothing in it is shared.
func (r *Resources) SharedRuns(typeURL string) []SharedRun { return r.shared[typeURL] }

// ByType returns the resources keyed by xDS type URL, the shape caches use.
func (r *Resources) ByType() map[string][]types.Resource {
	out := map[string][]types.Resource{
		resourcev3.ClusterType:  make([]types.Resource, 0, len(r.Clusters)),
		resourcev3.EndpointType: make([]types.Resource, 0, len(r.Endpoints)),
		resourcev3.ListenerType: make([]types.Resource, 0, len(r.Listeners)),
		resourcev3.RouteType:    make([]types.Resource, 0, len(r.Routes)),
		resourcev3.SecretType:   make([]types.Resource, 0, len(r.Secrets)),
	}
	for _, s := range r.Secrets {
		out[resourcev3.SecretType] = append(out[resourcev3.SecretType], s)
	}
	for _, c := range r.Clusters {
		out[resourcev3.ClusterType] = append(out[resourcev3.ClusterType], c)
	}
	for _, e := range r.Endpoints {
		out[resourcev3.EndpointType] = append(out[resourcev3.EndpointType], e)
	}
	for _, l := range r.Listeners {
		out[resourcev3.ListenerType] = append(out[resourcev3.ListenerType], l)
	}
	for _, rc := range r.Routes {
		out[resourcev3.RouteType] = append(out[resourcev3.RouteType], rc)
	}
	return out
}

// sortByName puts every list in name order so that output is deterministic.
func (r *Resources) sortByName() {
	sortSlice(r.Clusters, func(i, j int) bool { return r.Clusters[i].GetName() < r.Clusters[j].GetName() })
	sortSlice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].GetClusterName() < r.Endpoints[j].GetClusterName() })
	sortSlice(r.Listeners, func(i, j int) bool { return r.Listeners[i].GetName() < r.Listeners[j].GetName() })
	sortSlice(r.Routes, func(i, j int) bool { return r.Routes[i].GetName() < r.Routes[j].GetName() })
	sortSlice(r.Secrets, func(i, j int) bool { return r.Secrets[i].GetName() < r.Secrets[j].GetName() })
}

// sortSlice sorts unless the slice is sorted already (the shared part of a
// sidecar's clusters always is: checking is much cheaper than sorting).
func sortSlice(x any, less func(i, j int) bool) {
	if !sort.SliceIsSorted(x, less) {
		sort.Slice(x, less)
	}
}
