package translator

// Routes: a VirtualService's ordered http rules become the routes of the
// virtual host that serves one service port. Without a VirtualService, the
// virtual host has one route to the whole service.

import (
	"fmt"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/minimesh/minimesh/mesh"
)

// Istio's default retry policy, applied when a VirtualService sets none:
// two retries on connection failures and on the gRPC statuses that say the
// request never reached the application.
const (
	defaultRetryAttempts = 2
	defaultRetryOn       = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
)

// grpcRetryOn are the retry conditions gRPC clients understand (gRPC status
// names); gRPC ignores the HTTP ones.
var grpcRetryOn = map[string]bool{
	"cancelled": true, "deadline-exceeded": true, "internal": true,
	"resource-exhausted": true, "unavailable": true,
}

// routesFor builds the routes of the virtual host for one port of svc.
// Every cluster a route sends to is added to used.
func (ix *index) routesFor(svc *mesh.Service, port uint32, flavor Flavor, used map[clusterRef]bool) ([]*routev3.Route, error) {
	vs := ix.routes[svc.Hostname]
	if vs == nil {
		ref := clusterRef{host: svc.Hostname, port: port}
		used[ref] = true
		action := routeAction([]mesh.RouteDestination{{Host: svc.Hostname, Port: port, Weight: 100}}, port, nil, 0, flavor)
		return []*routev3.Route{{Name: "default", Match: PrefixMatch("/"), Action: action}}, nil
	}
	var out []*routev3.Route
	for i, rule := range vs.HTTP {
		for _, d := range rule.Route {
			used[destinationCluster(d, port)] = true
		}
		action := routeAction(rule.Route, port, rule.Retries, rule.Timeout, flavor)
		matches := rule.Match
		if len(matches) == 0 {
			matches = []mesh.HTTPMatch{{}}
		}
		for j, m := range matches {
			match, err := routeMatch(m)
			if err != nil {
				return nil, fmt.Errorf("%s: http[%d].match[%d]: %w", vs.Source, i, j, err)
			}
			out = append(out, &routev3.Route{Name: routeName(vs, i, rule, m), Match: match, Action: action})
		}
	}
	return out, nil
}

// routeName tells, in Envoy stats and config dumps, which rule a route came
// from: "default/my-app-vs.http[0]" or the names the rule and match carry.
func routeName(vs *mesh.VirtualService, i int, rule mesh.HTTPRoute, m mesh.HTTPMatch) string {
	name := fmt.Sprintf("%s/%s.http[%d]", vs.Namespace, vs.Name, i)
	if rule.Name != "" {
		name = vs.Namespace + "/" + vs.Name + "." + rule.Name
	}
	if m.Name != "" {
		name += "." + m.Name
	}
	return name
}

// destinationCluster is the cluster a route destination sends to. A
// destination without a port goes to the port being routed.
func destinationCluster(d mesh.RouteDestination, routedPort uint32) clusterRef {
	port := d.Port
	if port == 0 {
		port = routedPort
	}
	return clusterRef{host: d.Host, port: port, subset: d.Subset}
}

// routeMatch turns an Istio match block into an Envoy route match.
func routeMatch(m mesh.HTTPMatch) (*routev3.RouteMatch, error) {
	rm := PrefixMatch("/")
	if m.URI != nil {
		switch m.URI.Kind {
		case mesh.MatchExact:
			rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.URI.Value}
		case mesh.MatchPrefix:
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.URI.Value}
		case mesh.MatchRegex:
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.URI.Value}}
		default:
			return nil, fmt.Errorf("uri: unknown match kind %q", m.URI.Kind)
		}
	}
	if m.Method != nil {
		h, err := headerMatcher(":method", *m.Method)
		if err != nil {
			return nil, err
		}
		rm.Headers = append(rm.Headers, h)
	}
	for _, hm := range m.Headers {
		h, err := headerMatcher(hm.Name, hm.Value)
		if err != nil {
			return nil, err
		}
		rm.Headers = append(rm.Headers, h)
	}
	return rm, nil
}

// headerMatcher matches one header against a string match.
func headerMatcher(name string, sm mesh.StringMatch) (*routev3.HeaderMatcher, error) {
	m := &matcherv3.StringMatcher{}
	switch sm.Kind {
	case mesh.MatchExact:
		m.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: sm.Value}
	case mesh.MatchPrefix:
		m.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: sm.Value}
	case mesh.MatchRegex:
		m.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: sm.Value}}
	default:
		return nil, fmt.Errorf("header %s: unknown match kind %q", name, sm.Kind)
	}
	return &routev3.HeaderMatcher{
		Name:                 name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: m},
	}, nil
}

// routeAction sends to one cluster, or splits by weight between several.
func routeAction(dests []mesh.RouteDestination, routedPort uint32, retries *mesh.Retries, timeout time.Duration, flavor Flavor) *routev3.Route_Route {
	ra := &routev3.RouteAction{}
	if len(dests) == 1 {
		ra.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: destinationCluster(dests[0], routedPort).name()}
	} else {
		wc := &routev3.WeightedCluster{}
		for _, d := range dests {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
				Name:   destinationCluster(d, routedPort).name(),
				Weight: wrapperspb.UInt32(d.Weight),
			})
		}
		ra.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	setTimeout(ra, timeout, flavor)
	ra.RetryPolicy = retryPolicy(retries, flavor)
	return &routev3.Route_Route{Route: ra}
}

// setTimeout applies a VirtualService timeout. Envoy's default of 15 s is
// turned off when none is set, as Istio does (streams may be long). gRPC
// reads max_stream_duration, not timeout.
func setTimeout(ra *routev3.RouteAction, timeout time.Duration, flavor Flavor) {
	if flavor == FlavorGRPC {
		if timeout > 0 {
			ra.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(timeout)}
		}
		return
	}
	ra.Timeout = durationpb.New(timeout)
}

// retryPolicy maps Istio retries to Envoy's, with Istio's default when the
// rule sets none. attempts: 0 turns retries off.
func retryPolicy(r *mesh.Retries, flavor Flavor) *routev3.RetryPolicy {
	attempts, on := uint32(defaultRetryAttempts), defaultRetryOn
	var perTry time.Duration
	if r != nil {
		attempts, perTry = r.Attempts, r.PerTryTimeout
		if r.RetryOn != "" {
			on = r.RetryOn
		}
	}
	if attempts == 0 {
		return nil
	}
	if flavor == FlavorGRPC {
		on = keepGRPCConditions(on)
		if on == "" {
			return nil // nothing gRPC can act on
		}
	}
	p := &routev3.RetryPolicy{RetryOn: on, NumRetries: wrapperspb.UInt32(attempts)}
	if perTry > 0 {
		p.PerTryTimeout = durationpb.New(perTry)
	}
	return p
}

// keepGRPCConditions drops the retry conditions gRPC does not know.
func keepGRPCConditions(on string) string {
	var kept []string
	for _, c := range strings.Split(on, ",") {
		if c = strings.TrimSpace(c); grpcRetryOn[c] {
			kept = append(kept, c)
		}
	}
	return strings.Join(kept, ",")
}

// inboundRoute hands every request to the local application, with no
// timeout (the caller's sidecar enforces the VirtualService's).
func inboundRoute(cluster string) *routev3.Route {
	return &routev3.Route{
		Name:  "default",
		Match: PrefixMatch("/"),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
		}},
	}
}
