package cache

// Checks run on every snapshot before it is published. ValidateAll applies
// the protoc-gen-validate rules compiled into Envoy's API; the rest are the
// cross-reference and semantic rules Envoy and gRPC enforce at runtime,
// which go-control-plane's own Consistent() does not cover (it does not know
// API listeners, inline route configurations or weighted clusters).

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// validator is implemented by every generated Envoy API message.
type validator interface{ ValidateAll() error }

// Check returns every problem in a set of resources keyed by type URL, joined.
func Check(byType map[string][]types.Resource) error { return check(byType, nil) }

// check is Check, validating each resource once per memo.
func check(byType map[string][]types.Resource, memo *Memo) error {
	var errs []error
	names := map[string]map[string]bool{}
	for _, t := range Types {
		names[t] = make(map[string]bool, len(byType[t]))
		for _, r := range byType[t] {
			name := cachev3.GetResourceName(r)
			// A resource filed under another type's URL would be sent as
			// that type, and made the casts below panic: refuse it.
			if got := resourcev3.APITypePrefix + string(proto.MessageName(r)); got != t {
				errs = append(errs, fmt.Errorf("%s %q: is a %s", shortType(t), name, shortType(got)))
				continue
			}
			if names[t][name] {
				errs = append(errs, fmt.Errorf("%s %q: duplicate name", shortType(t), name))
			}
			names[t][name] = true
			var invalid error
			if v, ok := r.(validator); ok {
				invalid = memo.validate(v)
			}
			switch {
			case invalid != nil:
				errs = append(errs, fmt.Errorf("%s %q: %w", shortType(t), name, invalid))
			case name == "":
				// xDS knows resources by name, but ValidateAll lets a
				// listener or a route configuration have none: a gRPC
				// client cannot ask for it, and Envoy gives a nameless
				// listener a new random name on every update.
				errs = append(errs, fmt.Errorf("%s %q: no name", shortType(t), name))
			}
		}
	}
	for t := range byType {
		if names[t] == nil {
			errs = append(errs, fmt.Errorf("unexpected resource type %s", t))
		}
	}
	c := checker{names: names}
	// The type of each resource was checked above; skip any misfiled one.
	for _, r := range byType[resourcev3.ClusterType] {
		if cl, ok := r.(*clusterv3.Cluster); ok {
			c.cluster(cl)
		}
	}
	for _, r := range byType[resourcev3.ListenerType] {
		if l, ok := r.(*listenerv3.Listener); ok {
			c.listener(l)
		}
	}
	for _, r := range byType[resourcev3.RouteType] {
		if rc, ok := r.(*routev3.RouteConfiguration); ok {
			c.routeConfig(rc, "RouteConfiguration "+quote(rc.GetName()))
		}
	}
	return errors.Join(append(errs, c.errs...)...)
}

// checker collects cross-reference problems.
type checker struct {
	names map[string]map[string]bool
	errs  []error
}

func (c *checker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
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
	if !c.names[resourcev3.EndpointType][service] {
		c.fail("Cluster %q: EDS service %q has no ClusterLoadAssignment", cl.GetName(), service)
	}
}

// listener: a socket listener needs an address and filter chains; an API
// listener a connection manager; route configurations and clusters named by
// the filters must exist.
func (c *checker) listener(l *listenerv3.Listener) {
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
		if cl := tp.GetCluster(); cl != "" && !c.names[resourcev3.ClusterType][cl] {
			c.fail("%s: tcp_proxy: unknown cluster %q", where, cl)
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
		if name := hcm.GetRds().GetRouteConfigName(); !c.names[resourcev3.RouteType][name] {
			c.fail("%s: unknown route configuration %q", where, name)
		}
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

// routeAction checks one route's clusters. The description of where the
// route is is built only for a failure: this runs for every route of every
// proxy.
func (c *checker) routeAction(ra *routev3.RouteAction, rcWhere string, vh *routev3.VirtualHost, r *routev3.Route) {
	if ra == nil {
		return
	}
	where := func() string {
		return fmt.Sprintf("%s virtual host %q route %q", rcWhere, vh.GetName(), r.GetName())
	}
	if cl := ra.GetCluster(); cl != "" && !c.names[resourcev3.ClusterType][cl] {
		c.fail("%s: unknown cluster %q", where(), cl)
	}
	if wc := ra.GetWeightedClusters(); wc != nil {
		var sum uint64
		for _, cw := range wc.GetClusters() {
			sum += uint64(cw.GetWeight().GetValue())
			if !c.names[resourcev3.ClusterType][cw.GetName()] {
				c.fail("%s: unknown cluster %q", where(), cw.GetName())
			}
		}
		if sum == 0 {
			c.fail("%s: weighted clusters sum to 0", where())
		}
	}
}
