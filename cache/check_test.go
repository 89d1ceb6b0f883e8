package cache_test

import (
	"errors"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/minimesh/minimesh/cache"
)

// The valid set passes go-control-plane's own consistency check too, which
// is independent of ours. That check does not follow API listeners, so the
// gRPC client's listener and routes are left out of it.
func TestValidSetIsConsistent(t *testing.T) {
	rs := valid()
	rs.remove(t, resourcev3.ListenerType, apiListener)
	rs.remove(t, resourcev3.RouteType, grpcRoutes)
	s, err := cachev3.NewSnapshot("1", map[string][]types.Resource(rs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Consistent(); err != nil {
		t.Errorf("Consistent: %v", err)
	}
}

func TestCheckValid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, rs resources)
	}{
		{"complete set", func(*testing.T, resources) {}},
		{"nothing at all", func(_ *testing.T, rs resources) { clear(rs) }},
		{"the same domain in two route configurations", func(t *testing.T, rs resources) {
			rs.replace(t, resourcev3.RouteType, grpcRoutes, routeConfig(grpcRoutes,
				virtualHost("grpc", []string{"my-app", "my-app.default.svc.cluster.local:80"}, toCluster("default", v1Cluster))))
		}},
		{"API listener with an inline route configuration", func(t *testing.T, rs resources) {
			rs.replace(t, resourcev3.ListenerType, apiListener, apiListenerOf(apiListener, inline(routeConfig("inline",
				virtualHost("grpc", []string{"*"}, toCluster("default", v1Cluster))))))
		}},
		{"a router not named envoy.filters.http.router", func(t *testing.T, rs resources) {
			// Envoy and gRPC know the router by the type of its config.
			rs.replace(t, resourcev3.ListenerType, apiListener, apiListenerOf(apiListener,
				rds(grpcRoutes, fault(), httpFilter("router", &routerv3.Router{}))))
		}},
		{"filter chains told apart by their match", func(t *testing.T, rs resources) {
			l := listener(tcpListener, 5432, tcpProxyFilter(dbCluster), tcpProxyFilter(v1Cluster))
			l.FilterChains[1].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"db.example.com"}}
			rs.replace(t, resourcev3.ListenerType, tcpListener, l)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := valid()
			tc.change(t, rs)
			if err := cache.Check(rs); err != nil {
				t.Errorf("Check: %v", err)
			}
			s, err := cache.NewSnapshot(rs)
			if err != nil || s == nil {
				t.Fatalf("NewSnapshot = %v, %v; want a snapshot", s, err)
			}
		})
	}
}

// Each case breaks the valid set in one place; Check must report it, once,
// naming the resource.
func TestCheckFindsProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, rs resources)
		want   []string // in the message of one of the errors
		count  int      // errors expected (1 if 0)
	}{
		{
			name: "duplicate cluster",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], edsCluster(v1Cluster, ""))
			},
			want: []string{`Cluster "outbound|80|v1|my-app.default.svc.cluster.local": duplicate name`},
		},
		{
			name: "duplicate route configuration",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.RouteType] = append(rs[resourcev3.RouteType], routeConfig(sidecarRoutes))
			},
			want: []string{`RouteConfiguration "15001": duplicate name`},
		},
		{
			name: "cluster without a name (ValidateAll)",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], staticCluster("", 8080))
			},
			want: []string{`Cluster ""`, "Name"},
		},
		{
			name: "listener port out of range (ValidateAll)",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, tcpListener, listener(tcpListener, 70000, tcpProxyFilter(dbCluster)))
			},
			want: []string{`Listener "127.0.0.1_5432"`, "PortValue"},
		},
		{
			name: "listener without a name",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.ListenerType] = append(rs[resourcev3.ListenerType], listener("", 8080, tcpProxyFilter(dbCluster)))
			},
			want: []string{`Listener ""`, "no name"},
		},
		{
			name: "EDS cluster without endpoints",
			break_: func(t *testing.T, rs resources) {
				rs.remove(t, resourcev3.EndpointType, v2Cluster)
			},
			want: []string{`Cluster "outbound|80|v2|my-app.default.svc.cluster.local": EDS service "outbound|80|v2|my-app.default.svc.cluster.local" has no ClusterLoadAssignment`},
		},
		{
			name: "EDS endpoints named after the cluster, not its service name",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.EndpointType, dbService, loadAssignment(dbCluster, 5432, "10.0.1.1"))
			},
			want: []string{`Cluster "outbound|5432||db.data.svc.cluster.local": EDS service "db.data.svc.cluster.local:5432" has no ClusterLoadAssignment`},
		},
		{
			name: "API listener naming a missing route configuration",
			break_: func(t *testing.T, rs resources) {
				rs.remove(t, resourcev3.RouteType, grpcRoutes)
			},
			want: []string{`Listener "my-app.default.svc.cluster.local:80": unknown route configuration "my-app.default.svc.cluster.local:80"`},
		},
		{
			name: "socket listener naming a missing route configuration",
			break_: func(t *testing.T, rs resources) {
				rs.remove(t, resourcev3.RouteType, sidecarRoutes)
			},
			want: []string{`Listener "127.0.0.1_15001" filter_chains[0]: unknown route configuration "15001"`},
		},
		{
			name: "route to a missing cluster",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.RouteType, grpcRoutes, routeConfig(grpcRoutes,
					virtualHost("grpc", []string{"*"}, toCluster("to-nowhere", "outbound|80||missing"))))
			},
			want: []string{`RouteConfiguration "my-app.default.svc.cluster.local:80"`, `route "to-nowhere"`, `unknown cluster "outbound|80||missing"`},
		},
		{
			name: "inline route to a missing cluster",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, inboundListener, listener(inboundListener, 50051,
					hcmFilter(inline(routeConfig("inline", virtualHost("in", []string{"*"}, toCluster("default", "inbound|9||")))))))
			},
			want: []string{`Listener "127.0.0.1_50051"`, `unknown cluster "inbound|9||"`},
		},
		{
			name: "weighted clusters with a missing cluster",
			break_: func(t *testing.T, rs resources) {
				rs.remove(t, resourcev3.ClusterType, v2Cluster)
				rs.remove(t, resourcev3.EndpointType, v2Cluster)
			},
			// Both route configurations split to it.
			want:  []string{`RouteConfiguration "15001"`, `RouteConfiguration "my-app.default.svc.cluster.local:80"`, `unknown cluster "outbound|80|v2|my-app.default.svc.cluster.local"`},
			count: 2,
		},
		{
			name: "weighted clusters summing to 0",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.RouteType, grpcRoutes, routeConfig(grpcRoutes,
					virtualHost("grpc", []string{"*"}, split("zero", weighted{v1Cluster, 0}, weighted{v2Cluster, 0}))))
			},
			want: []string{`RouteConfiguration "my-app.default.svc.cluster.local:80"`, `route "zero"`, "sum to 0"},
		},
		{
			name: "the same domain in two virtual hosts",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.RouteType, sidecarRoutes, routeConfig(sidecarRoutes,
					virtualHost("a", []string{"a", "my-app"}, toCluster("default", v1Cluster)),
					virtualHost("b", []string{"my-app", "b"}, toCluster("default", v2Cluster))))
			},
			want: []string{`RouteConfiguration "15001": domain "my-app" is in virtual hosts "a" and "b"`},
		},
		{
			name: "listener without an address",
			break_: func(t *testing.T, rs resources) {
				rs.find(resourcev3.ListenerType, tcpListener).(*listenerv3.Listener).Address = nil
			},
			want: []string{`Listener "127.0.0.1_5432": no address`},
		},
		{
			name: "listener without filter chains",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, tcpListener, listener(tcpListener, 5432))
			},
			want: []string{`Listener "127.0.0.1_5432": no filter chains`},
		},
		{
			name: "two filter chains without a match",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, tcpListener, listener(tcpListener, 5432, tcpProxyFilter(dbCluster), tcpProxyFilter(v1Cluster)))
			},
			want: []string{`Listener "127.0.0.1_5432": filter_chains[1]: same filter_chain_match`},
		},
		{
			name: "two filter chains with equal matches",
			break_: func(t *testing.T, rs resources) {
				l := listener(tcpListener, 5432, tcpProxyFilter(dbCluster), tcpProxyFilter(v1Cluster), tcpProxyFilter(v2Cluster))
				l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}}
				l.FilterChains[1].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"b.example.com"}}
				l.FilterChains[2].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}}
				rs.replace(t, resourcev3.ListenerType, tcpListener, l)
			},
			want: []string{`Listener "127.0.0.1_5432": filter_chains[2]: same filter_chain_match`},
		},
		{
			name: "tcp_proxy to a missing cluster",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, tcpListener, listener(tcpListener, 5432, tcpProxyFilter("outbound|5432||gone")))
			},
			want: []string{`Listener "127.0.0.1_5432" filter_chains[0]: tcp_proxy: unknown cluster "outbound|5432||gone"`},
		},
		{
			name: "router before another HTTP filter",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, httpListener, listener(httpListener, 15001, hcmFilter(rds(sidecarRoutes, router(), fault()))))
			},
			want: []string{`Listener "127.0.0.1_15001" filter_chains[0]: the router must be the last HTTP filter`},
		},
		{
			name: "last HTTP filter named like the router, but not one",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, httpListener, listener(httpListener, 15001,
					hcmFilter(rds(sidecarRoutes, httpFilter("envoy.filters.http.router", &faultv3.HTTPFault{})))))
			},
			want: []string{`Listener "127.0.0.1_15001" filter_chains[0]: the router must be the last HTTP filter`},
		},
		{
			name: "router without a typed config",
			break_: func(t *testing.T, rs resources) {
				rs.replace(t, resourcev3.ListenerType, apiListener, apiListenerOf(apiListener,
					rds(grpcRoutes, &hcmv3.HttpFilter{Name: "envoy.filters.http.router"})))
			},
			want: []string{`Listener "my-app.default.svc.cluster.local:80": the router must be the last HTTP filter`},
		},
		{
			name: "default filter chain naming a missing route configuration",
			break_: func(t *testing.T, rs resources) {
				l := rs.find(resourcev3.ListenerType, httpListener).(*listenerv3.Listener)
				l.DefaultFilterChain = &listenerv3.FilterChain{Filters: []*listenerv3.Filter{hcmFilter(rds("missing"))}}
			},
			want: []string{`Listener "127.0.0.1_15001" default_filter_chain: unknown route configuration "missing"`},
		},
		{
			name: "default filter chain with tcp_proxy to a missing cluster",
			break_: func(t *testing.T, rs resources) {
				l := listener(tcpListener, 5432)
				l.DefaultFilterChain = &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcpProxyFilter("gone")}}
				rs.replace(t, resourcev3.ListenerType, tcpListener, l)
			},
			want: []string{`Listener "127.0.0.1_5432" default_filter_chain: tcp_proxy: unknown cluster "gone"`},
		},
		{
			name: "API listener without HTTP filters",
			break_: func(t *testing.T, rs resources) {
				hcm := rds(grpcRoutes)
				hcm.HttpFilters = nil
				rs.replace(t, resourcev3.ListenerType, apiListener, apiListenerOf(apiListener, hcm))
			},
			want: []string{`Listener "my-app.default.svc.cluster.local:80": the router must be the last HTTP filter`},
		},
		{
			name: "a type minimesh does not serve",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.RuntimeType] = nil
			},
			want: []string{"unexpected resource type", resourcev3.RuntimeType},
		},
		{
			name: "a resource of another type",
			break_: func(t *testing.T, rs resources) {
				rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], proto.Clone(rs.find(resourcev3.RouteType, sidecarRoutes)).(*routev3.RouteConfiguration))
			},
			want: []string{`Cluster "15001"`, "RouteConfiguration"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := valid()
			tc.break_(t, rs)
			err := cache.Check(rs)
			if err == nil {
				t.Fatal("Check passed")
			}
			errs := []error{err}
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no error says %q; got:\n%v", w, err)
				}
			}
			if want := max(tc.count, 1); len(errs) != want {
				t.Errorf("%d errors, want %d:\n%v", len(errs), want, err)
			}
			// A snapshot that fails the check is never made.
			if s, err := cache.NewSnapshot(rs); err == nil || s != nil {
				t.Errorf("NewSnapshot = %v, %v; want no snapshot and an error", s, err)
			} else if !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("NewSnapshot error %q does not say %q", err, tc.want[0])
			}
		})
	}
}

// Check does not stop at the first problem.
func TestCheckReportsEveryProblem(t *testing.T) {
	rs := valid()
	rs.remove(t, resourcev3.EndpointType, v1Cluster)
	rs.remove(t, resourcev3.RouteType, grpcRoutes)
	rs.find(resourcev3.ListenerType, tcpListener).(*listenerv3.Listener).Address = nil
	err := cache.Check(rs)
	for _, w := range []string{v1Cluster, `unknown route configuration "my-app.default.svc.cluster.local:80"`, "no address"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check = %v; want an error saying %q", err, w)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("want 3 joined errors, got %v", err)
	}
}
