package cache

// Checks run on every snapshot before it is published. ValidateAll applies
// the protoc-gen-validate rules compiled into Envoy's API; the rest are the
// cross-reference and semantic rules Envoy and gRPC enforce at runtime,
// which go-control-plane's own Consistent() does not cover (it does not know
// API listeners, inline route configurations or weighted clusters).

import (
	"fmt"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// validator is implemented by every generated Envoy API message.
type validator interface{ ValidateAll() error }

// Check returns every problem in a set of resources keyed by type URL, joined.
func Check(byType map[string][]types.Resource) error {
	_, err := NewSnapshot(byType)
	return err
}

// The checks of single resources (type, name, ValidateAll, duplicates) are
// made when a set is built (snapshot.go). The cross-reference checks below
// depend on a few sets each, so they are made once per combination of sets
// in a memo: most proxies share all the sets involved.

// checkKey is the sets one cross-reference check reads.
type checkKey struct {
	kind                                   string
	clusters, endpoints, listeners, routes *typeSet
}

type checkEntry struct {
	once sync.Once
	errs []error
}

// crossCheck returns the cross-reference problems of a snapshot: clusters
// against endpoints, listeners against routes and clusters, routes against
// clusters.
func (m *Memo) crossCheck(s *Snapshot) []error {
	c, e := s.sets[resourcev3.ClusterType], s.sets[resourcev3.EndpointType]
	l, r := s.sets[resourcev3.ListenerType], s.sets[resourcev3.RouteType]
	var errs []error
	errs = append(errs, m.check(checkKey{kind: "clusters", clusters: c, endpoints: e})...)
	errs = append(errs, m.check(checkKey{kind: "listeners", clusters: c, listeners: l, routes: r})...)
	errs = append(errs, m.check(checkKey{kind: "routes", clusters: c, routes: r})...)
	return errs
}

// check runs one cross-reference check, once per memo.
func (m *Memo) check(k checkKey) []error {
	run := func() []error {
		c := checker{memo: m, sets: map[string]*typeSet{
			resourcev3.ClusterType: k.clusters, resourcev3.EndpointType: k.endpoints,
			resourcev3.ListenerType: k.listeners, resourcev3.RouteType: k.routes,
		}}
		switch k.kind {
		case "clusters":
			for _, n := range k.clusters.order {
				c.cluster(k.clusters.resources[n].(*clusterv3.Cluster))
			}
		case "listeners":
			for _, n := range k.listeners.order {
				c.listener(k.listeners.resources[n].(*listenerv3.Listener))
			}
		case "routes":
			for _, n := range k.routes.order {
				c.routeConfiguration(k.routes.resources[n].(*routev3.RouteConfiguration))
			}
		}
		return c.errs
	}
	if m == nil {
		return run()
	}
	// Sets carried over from the previous memo (memo.typeSet) carry their
	// checks too.
	e := carried(m, func(m *Memo) map[checkKey]*checkEntry { return m.checks }, k)
	e.once.Do(func() { e.errs = run() })
	return e.errs
}

// checker collects cross-reference problems.
type checker struct {
	sets map[string]*typeSet
	memo *Memo
	errs []error

	// record, when set, collects the problems and references of one
	// message instead of checking them (see refs).
	record *refs
}

// refs is what checking one listener or route configuration needs: the
// problems it has on its own, and the resources it refers to. It is read
// once per message (per memo, and carried to the next one with the
// message) and replayed against the sets of every proxy that has it: a
// listener's HttpConnectionManager is then unpacked once, not once per
// proxy.
type refs struct {
	problems []error
	needs    []need
}

// need is a resource a message refers to, and the problem if it is missing.
type need struct {
	typeURL, name string
	missing       error
}

// refsOf returns the problems and references of msg, which read records.
func (c *checker) refsOf(msg types.Resource, read func(*checker)) *refs {
	build := func() *refs {
		rec := &checker{record: &refs{}}
		read(rec)
		return rec.record
	}
	if c.memo == nil {
		return build()
	}
	e := c.memo.encode(msg)
	if e.twin != nil {
		e = e.twin // the same content: the same problems and references
	}
	e.refsOnce.Do(func() { e.refs = build() })
	return e.refs
}

// replay checks recorded references against the sets.
func (c *checker) replay(r *refs) {
	c.errs = append(c.errs, r.problems...)
	for _, n := range r.needs {
		if !c.has(n.typeURL, n.name) {
			c.errs = append(c.errs, n.missing)
		}
	}
}

// has reports whether the snapshot has a resource of a type by name.
func (c *checker) has(typeURL, name string) bool {
	set := c.sets[typeURL]
	if set == nil {
		return false
	}
	_, ok := set.resources[name]
	return ok
}

// needs records that a resource must exist (recording), or checks that it
// does; format and args say what is wrong if not.
func (c *checker) needs(typeURL, name string, format string, args ...any) {
	if c.record != nil {
		c.record.needs = append(c.record.needs, need{typeURL, name, fmt.Errorf(format, args...)})
		return
	}
	if !c.has(typeURL, name) {
		c.fail(format, args...)
	}
}

func (c *checker) fail(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if c.record != nil {
		c.record.problems = append(c.record.problems, err)
		return
	}
	c.errs = append(c.errs, err)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// cluster: an EDS cluster needs its endpoints in the same snapshot.
func (c *checker) cluster(cl *clusterv3.Cluster) {
	if cl.GetType() != clusterv3.Cluster_EDS {
		return
	}
	service := cl.GetEdsClusterConfig().GetServiceName()
	if service == "" {
		service = cl.GetName()
	}
	if !c.has(resourcev3.EndpointType, service) {
		c.fail("Cluster %q: EDS service %q has no ClusterLoadAssignment", cl.GetName(), service)
	}
}

// listener checks a listener, reading it once (see refs).
func (c *checker) listener(l *listenerv3.Listener) {
	c.replay(c.refsOf(l, func(rec *checker) { rec.readListener(l) }))
}

// routeConfiguration checks a route configuration served by RDS, reading
// it once (see refs).
func (c *checker) routeConfiguration(rc *routev3.RouteConfiguration) {
	c.replay(c.refsOf(rc, func(rec *checker) { rec.routeConfig(rc, "RouteConfiguration "+quote(rc.GetName())) }))
}

// readListener: a socket listener needs an address and filter chains; an
// API listener a connection manager; route configurations and clusters
// named by the filters must exist.
func (c *checker) readListener(l *listenerv3.Listener) {
	where := "Listener " + quote(l.GetName())
	if api := l.GetApiListener().GetApiListener(); api != nil {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := api.UnmarshalTo(hcm); err != nil {
			c.fail("%s: api_listener is not an HttpConnectionManager: %v", where, err)
			return
		}
		c.hcm(hcm, where)
		return
	}
	if l.GetAddress() == nil {
		c.fail("%s: no address", where)
	}
	if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
		c.fail("%s: no filter chains", where)
	}
	seen := map[string]bool{}
	for i, fc := range l.GetFilterChains() {
		key := fc.GetFilterChainMatch().String()
		if seen[key] {
			c.fail("%s: filter_chains[%d]: same filter_chain_match as an earlier chain", where, i)
		}
		seen[key] = true
		for _, f := range fc.GetFilters() {
			c.networkFilter(f, fmt.Sprintf("%s filter_chains[%d]", where, i))
		}
	}
	// The default chain's filters reference route configurations and
	// clusters just like the others.
	for _, f := range l.GetDefaultFilterChain().GetFilters() {
		c.networkFilter(f, where+" default_filter_chain")
	}
}

// networkFilter follows an HCM or TCP proxy to what it references.
func (c *checker) networkFilter(f *listenerv3.Filter, where string) {
	tc := f.GetTypedConfig()
	if tc == nil {
		return
	}
	switch {
	case tc.MessageIs(&hcmv3.HttpConnectionManager{}):
		hcm := &hcmv3.HttpConnectionManager{}
		if err := tc.UnmarshalTo(hcm); err != nil {
			c.fail("%s: %v", where, err)
			return
		}
		c.hcm(hcm, where)
	case tc.MessageIs(&tcpproxyv3.TcpProxy{}):
		tp := &tcpproxyv3.TcpProxy{}
		if err := tc.UnmarshalTo(tp); err != nil {
			c.fail("%s: %v", where, err)
			return
		}
		if cl := tp.GetCluster(); cl != "" {
			c.needs(resourcev3.ClusterType, cl, "%s: tcp_proxy: unknown cluster %q", where, cl)
		}
	}
}

// hcm: RDS names an existing route configuration; an inline one is checked
// in place; the router filter comes last.
func (c *checker) hcm(hcm *hcmv3.HttpConnectionManager, where string) {
	filters := hcm.GetHttpFilters()
	// Envoy and gRPC tell the router by the type of its config, not by the
	// filter's name (which is free).
	if len(filters) == 0 || !filters[len(filters)-1].GetTypedConfig().MessageIs(&routerv3.Router{}) {
		c.fail("%s: the router must be the last HTTP filter", where)
	}
	switch {
	case hcm.GetRds() != nil:
		name := hcm.GetRds().GetRouteConfigName()
		c.needs(resourcev3.RouteType, name, "%s: unknown route configuration %q", where, name)
	case hcm.GetRouteConfig() != nil:
		c.routeConfig(hcm.GetRouteConfig(), where+" inline route_config")
	default:
		c.fail("%s: no route configuration", where)
	}
}

// routeConfig: no domain in two virtual hosts; every cluster exists; no
// weighted set sums to zero.
func (c *checker) routeConfig(rc *routev3.RouteConfiguration, where string) {
	domains := map[string]string{}
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			if other, dup := domains[d]; dup {
				c.fail("%s: domain %q is in virtual hosts %q and %q", where, d, other, vh.GetName())
			}
			domains[d] = vh.GetName()
		}
		for _, r := range vh.GetRoutes() {
			c.routeAction(r.GetRoute(), where, vh, r)
		}
	}
}

// routeAction checks one route's clusters.
func (c *checker) routeAction(ra *routev3.RouteAction, rcWhere string, vh *routev3.VirtualHost, r *routev3.Route) {
	if ra == nil {
		return
	}
	where := fmt.Sprintf("%s virtual host %q route %q", rcWhere, vh.GetName(), r.GetName())
	if cl := ra.GetCluster(); cl != "" {
		c.needs(resourcev3.ClusterType, cl, "%s: unknown cluster %q", where, cl)
	}
	if wc := ra.GetWeightedClusters(); wc != nil {
		var sum uint64
		for _, cw := range wc.GetClusters() {
			sum += uint64(cw.GetWeight().GetValue())
			c.needs(resourcev3.ClusterType, cw.GetName(), "%s: unknown cluster %q", where, cw.GetName())
		}
		if sum == 0 {
			c.fail("%s: weighted clusters sum to 0", where)
		}
	}
}
