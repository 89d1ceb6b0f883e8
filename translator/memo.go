package translator

// Most of what proxies get is the same for many of them: every Envoy
// sidecar gets the same outbound clusters and endpoints, and every sidecar
// of a namespace the same route configuration. The index builds each once
// per mesh snapshot and hands the same (immutable) messages to every proxy,
// so a change costs one translation, not one per proxy, and the cache can
// hash each shared message once.
//
// Shared messages must never be modified after they are built.

import (
	"slices"
	"sort"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// memo holds what an index has built, for reuse by the next proxy.
type memo struct {
	mu         sync.Mutex
	clusters   map[memoClusterKey]builtCluster
	views      map[viewKey]*view
	httpRoutes map[viewKey]builtRoutes      // Envoy route configuration "15001", by view and proxy namespace
	listener   *listenerv3.Listener         // Envoy's outbound HTTP proxy listener
	outbound   map[outboundKey]*outboundSet // the sidecars' outbound clusters

	// Transparent mode: the outbound listeners and passthrough clusters are
	// the same for every transparent sidecar of a view, the route
	// configurations for every one of a view and namespace.
	transparent       map[viewKey]*transparentSet
	transparentRoutes map[viewKey]*routeSet
}

// outboundKey says which outbound clusters a sidecar gets: those of its
// view, with or without mesh mTLS.
type outboundKey struct {
	identity bool
	view     viewKey
}

// transparentSet is what every transparent sidecar gets alike: the outbound
// listeners and the passthrough clusters, each list sorted.
type transparentSet struct {
	listeners []*listenerv3.Listener
	clusters  []*clusterv3.Cluster
	errs      []error
}

// routeSet is a list of route configurations, sorted, and the problems met
// building them.
type routeSet struct {
	rcs  []*routev3.RouteConfiguration
	errs []error
}

// outboundSet is every outbound cluster of the mesh, for Envoy, sorted.
type outboundSet struct {
	clusters  []*clusterv3.Cluster
	endpoints []*endpointv3.ClusterLoadAssignment
	errs      []error
}

type memoClusterKey struct {
	ref      clusterRef
	flavor   Flavor
	identity bool
}

type builtCluster struct {
	cluster *clusterv3.Cluster
	cla     *endpointv3.ClusterLoadAssignment
	err     error
}

type builtRoutes struct {
	rc  *routev3.RouteConfiguration
	err error
}

// cluster returns the outbound cluster for ref, building it the first time.
func (ix *index) cluster(ref clusterRef, flavor Flavor, identity bool) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	key := memoClusterKey{ref, flavor, identity}
	ix.memo.mu.Lock()
	b, ok := ix.memo.clusters[key]
	ix.memo.mu.Unlock()
	if !ok {
		b.cluster, b.cla, b.err = ix.outboundCluster(ref, flavor, identity)
		ix.memo.mu.Lock()
		ix.memo.clusters[key] = b
		ix.memo.mu.Unlock()
	}
	return b.cluster, b.cla, b.err
}

// sharedHTTPProxyRouteConfig returns the route configuration "15001" for
// Envoy sidecars in namespace ns (short names depend on the namespace).
func (ix *index) sharedHTTPProxyRouteConfig(p Proxy, v *view) (*routev3.RouteConfiguration, error) {
	key := v.inNamespace(p.Namespace)
	ix.memo.mu.Lock()
	b, ok := ix.memo.httpRoutes[key]
	ix.memo.mu.Unlock()
	if !ok {
		b.rc, b.err = ix.httpProxyRouteConfig(p, v, map[clusterRef]bool{})
		ix.memo.mu.Lock()
		ix.memo.httpRoutes[key] = b
		ix.memo.mu.Unlock()
	}
	return b.rc, b.err
}

// sharedHTTPProxyListener returns Envoy's outbound listener on 15001.
func (ix *index) sharedHTTPProxyListener() (*listenerv3.Listener, error) {
	ix.memo.mu.Lock()
	defer ix.memo.mu.Unlock()
	if ix.memo.listener == nil {
		l, err := outboundHTTPProxyListener()
		if err != nil {
			return nil, err
		}
		ix.memo.listener = l
	}
	return ix.memo.listener, nil
}

// sharedEnvoyOutbound returns the outbound clusters of a view and their
// endpoints for Envoy sidecars, sorted by name, built once. Callers must
// not modify the slices.
func (ix *index) sharedEnvoyOutbound(identity bool, v *view) *outboundSet {
	key := outboundKey{identity, v.key}
	ix.memo.mu.Lock()
	out := ix.memo.outbound[key]
	ix.memo.mu.Unlock()
	if out != nil {
		return out
	}
	res := &Resources{}
	errs := ix.addClusters(res, ix.clusterRefs(v.services), FlavorEnvoy, identity)
	res.sortByName()
	out = &outboundSet{clusters: res.Clusters, endpoints: res.Endpoints, errs: errs}
	ix.memo.mu.Lock()
	ix.memo.outbound[key] = out
	ix.memo.mu.Unlock()
	return out
}

// sharedTransparentOutbound returns the outbound listeners and the
// passthrough clusters of transparent sidecars, built once. Callers must
// not modify the slices.
func (ix *index) sharedTransparentOutbound(v *view) *transparentSet {
	ix.memo.mu.Lock()
	set := ix.memo.transparent[v.key]
	ix.memo.mu.Unlock()
	if set != nil {
		return set
	}
	set = &transparentSet{clusters: passthroughClusters()}
	set.listeners, set.errs = ix.transparentOutboundListeners(v)
	ix.memo.mu.Lock()
	ix.memo.transparent[v.key] = set
	ix.memo.mu.Unlock()
	return set
}

// sharedTransparentRoutes returns the route configurations "<port>" of
// transparent sidecars in namespace ns, built once per namespace. Callers
// must not modify the slices.
func (ix *index) sharedTransparentRoutes(ns string, v *view) *routeSet {
	key := v.inNamespace(ns)
	ix.memo.mu.Lock()
	set := ix.memo.transparentRoutes[key]
	ix.memo.mu.Unlock()
	if set != nil {
		return set
	}
	set = &routeSet{}
	set.rcs, set.errs = ix.transparentRouteConfigs(ns, v)
	ix.memo.mu.Lock()
	ix.memo.transparentRoutes[key] = set
	ix.memo.mu.Unlock()
	return set
}

// markShared records in res where the lists the index shares with other
// proxies sit in this proxy's lists: the outbound clusters and endpoints,
// the HTTP proxy listener and its route configuration, the transparent
// listeners, passthrough clusters and route configurations. The lists are
// sorted by name, so each run is found by a binary search on its first
// name and then checked message by message; a run that is not there whole
// (sorting moved it, or translation failed) is simply not marked.
func (ix *index) markShared(res *Resources, p Proxy, v *view) {
	ix.memo.mu.Lock()
	out := ix.memo.outbound[outboundKey{p.hasIdentity(), v.key}]
	listener := ix.memo.listener
	routes := ix.memo.httpRoutes[v.inNamespace(p.Namespace)]
	transparent := ix.memo.transparent[v.key]
	transparentRoutes := ix.memo.transparentRoutes[v.inNamespace(p.Namespace)]
	ix.memo.mu.Unlock()

	if out != nil {
		markRun(res, resourcev3.ClusterType, out, res.Clusters, out.clusters, (*clusterv3.Cluster).GetName)
		markRun(res, resourcev3.EndpointType, out, res.Endpoints, out.endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	}
	if listener != nil {
		markRun(res, resourcev3.ListenerType, listener, res.Listeners, []*listenerv3.Listener{listener}, (*listenerv3.Listener).GetName)
	}
	if routes.rc != nil {
		markRun(res, resourcev3.RouteType, routes.rc, res.Routes, []*routev3.RouteConfiguration{routes.rc}, (*routev3.RouteConfiguration).GetName)
	}
	if transparent != nil {
		markRun(res, resourcev3.ListenerType, transparent, res.Listeners, transparent.listeners, (*listenerv3.Listener).GetName)
		markRun(res, resourcev3.ClusterType, transparent, res.Clusters, transparent.clusters, (*clusterv3.Cluster).GetName)
	}
	if transparentRoutes != nil {
		markRun(res, resourcev3.RouteType, transparentRoutes, res.Routes, transparentRoutes.rcs, (*routev3.RouteConfiguration).GetName)
	}
	for _, runs := range res.shared {
		slices.SortFunc(runs, func(a, b SharedRun) int { return a.Start - b.Start })
	}
}

// markRun marks run as shared under key if list holds it, whole and in
// order. list is sorted by name.
func markRun[T comparable](res *Resources, typeURL string, key any, list, run []T, name func(T) string) {
	if len(run) == 0 {
		return
	}
	first := name(run[0])
	start := sort.Search(len(list), func(i int) bool { return name(list[i]) >= first })
	if start+len(run) > len(list) {
		return
	}
	for i, m := range run {
		if list[start+i] != m {
			return
		}
	}
	if res.shared == nil {
		res.shared = map[string][]SharedRun{}
	}
	res.shared[typeURL] = append(res.shared[typeURL], SharedRun{Key: key, Start: start, End: start + len(run)})
}
