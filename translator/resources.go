package translator

import (
	"slices"
	"strings"
	"sync"

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

// A sidecar's lists are mostly the shared outbound clusters and endpoints,
// 3000 of each at 1000 services, copied into lists of its own: on every
// change, for every proxy. Lists that are done with are recycled, so that
// the copies land in memory already there rather than in new arrays.
var recycled = sync.Pool{New: func() any { return &Resources{} }}

// newResources returns empty Resources, with room from recycled lists.
func newResources() *Resources {
	r := recycled.Get().(*Resources)
	r.shared = nil
	return r
}

// Recycle hands r's lists back for later proxies. The caller must not use
// r, or any list read from it, afterwards; the messages themselves are not
// affected.
func (r *Resources) Recycle() {
	clear(r.Clusters)
	clear(r.Endpoints)
	clear(r.Listeners)
	clear(r.Routes)
	clear(r.Secrets)
	*r = Resources{Clusters: r.Clusters[:0], Endpoints: r.Endpoints[:0], Listeners: r.Listeners[:0], Routes: r.Routes[:0], Secrets: r.Secrets[:0]}
	recycled.Put(r)
}

// SharedRuns returns the shared runs of one type's list (by type URL, as in
// ByType), ordered by Start; nil if nothing in it is shared.
func (r *Resources) SharedRuns(typeURL string) []SharedRun { return r.shared[typeURL] }

// ByType returns the resources keyed by xDS type URL, the shape caches use.
func (r *Resources) ByType() map[string][]types.Resource {
	out := make(map[string][]types.Resource, 5)
	for _, t := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.SecretType} {
		out[t] = r.Slice(t, 0, r.Len(t))
	}
	return out
}

// Len is the length of one type's list (by type URL, as in ByType); 0 for
// a type a proxy never gets.
func (r *Resources) Len(typeURL string) int {
	switch typeURL {
	case resourcev3.ClusterType:
		return len(r.Clusters)
	case resourcev3.EndpointType:
		return len(r.Endpoints)
	case resourcev3.ListenerType:
		return len(r.Listeners)
	case resourcev3.RouteType:
		return len(r.Routes)
	case resourcev3.SecretType:
		return len(r.Secrets)
	}
	return 0
}

// Slice returns list[i:j] of one type's list, as the cache reads it: the
// cache reads a proxy's own resources and each shared run once, instead of
// a copy of every list per proxy.
func (r *Resources) Slice(typeURL string, i, j int) []types.Resource {
	switch typeURL {
	case resourcev3.ClusterType:
		return asResources(r.Clusters[i:j])
	case resourcev3.EndpointType:
		return asResources(r.Endpoints[i:j])
	case resourcev3.ListenerType:
		return asResources(r.Listeners[i:j])
	case resourcev3.RouteType:
		return asResources(r.Routes[i:j])
	case resourcev3.SecretType:
		return asResources(r.Secrets[i:j])
	}
	return nil
}

func asResources[T types.Resource](list []T) []types.Resource {
	out := make([]types.Resource, len(list))
	for i, m := range list {
		out[i] = m
	}
	return out
}

// sortByName puts every list in name order so that output is
// deterministic. The shared runs marked in r are sorted already, so only
// the rest of each list and the runs' edges are compared, and a list that
// needed sorting loses its marks (the caller marks it again).
func (r *Resources) sortByName() (sorted bool) {
	sorted = sortSlice(r, resourcev3.ClusterType, r.Clusters, (*clusterv3.Cluster).GetName) || sorted
	sorted = sortSlice(r, resourcev3.EndpointType, r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName) || sorted
	sorted = sortSlice(r, resourcev3.ListenerType, r.Listeners, (*listenerv3.Listener).GetName) || sorted
	sorted = sortSlice(r, resourcev3.RouteType, r.Routes, (*routev3.RouteConfiguration).GetName) || sorted
	sorted = sortSlice(r, resourcev3.SecretType, r.Secrets, (*tlsv3.Secret).GetName) || sorted
	return sorted
}

// sortSlice sorts list by name unless it is sorted already, and reports
// whether it sorted it. The marked runs (ordered by start) are skipped:
// only their edges are compared.
func sortSlice[T any](r *Resources, typeURL string, list []T, name func(T) string) bool {
	runs := r.shared[typeURL]
	next := 0 // the first run that does not end before i
	for i := 1; i < len(list); i++ {
		for next < len(runs) && runs[next].End <= i {
			next++
		}
		if next < len(runs) && runs[next].Start < i && i < runs[next].End {
			// list[i-1] and list[i] are in one run, and so is the rest of
			// it: go on from its last element, which the next step compares
			// with what follows the run.
			i = runs[next].End - 1
			continue
		}
		if name(list[i]) < name(list[i-1]) {
			slices.SortStableFunc(list, func(a, b T) int { return strings.Compare(name(a), name(b)) })
			delete(r.shared, typeURL)
			return true
		}
	}
	return false
}
