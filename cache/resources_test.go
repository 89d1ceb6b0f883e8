package cache_test

// Small constructors of Envoy resources, written for these tests
// independently of the translator, and a complete, valid set of resources
// (an Envoy sidecar's and a proxyless gRPC client's view of a 90/10 canary)
// that each check test breaks in one place.

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names used by the valid set.
const (
	v1Cluster      = "outbound|80|v1|my-app.default.svc.cluster.local"
	v2Cluster      = "outbound|80|v2|my-app.default.svc.cluster.local"
	dbCluster      = "outbound|5432||db.data.svc.cluster.local"
	dbService      = "db.data.svc.cluster.local:5432" // the EDS service name of dbCluster
	inboundCluster = "inbound|50051||"

	httpListener    = "127.0.0.1_15001"
	tcpListener     = "127.0.0.1_5432"
	inboundListener = "127.0.0.1_50051"
	apiListener     = "my-app.default.svc.cluster.local:80"

	sidecarRoutes = "15001"
	grpcRoutes    = "my-app.default.svc.cluster.local:80"
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// edsCluster is a cluster whose endpoints come over ADS; service is its
// EDS service name ("" to use the cluster name).
func edsCluster(name, service string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				ResourceApiVersion:    corev3.ApiVersion_V3,
			},
			ServiceName: service,
		},
		ConnectTimeout: durationpb.New(time.Second),
	}
}

// staticCluster is a cluster with one inline endpoint.
func staticCluster(name string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment:       loadAssignment(name, port, "127.0.0.1"),
	}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// loadAssignment is a ClusterLoadAssignment with one endpoint per address.
func loadAssignment(name string, port uint32, ips ...string) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, ip := range ips {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: socketAddress(ip, port)},
		}})
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}},
	}
}

// httpFilter is an HTTP filter with its config.
func httpFilter(name string, config proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(config)}}
}

func router() *hcmv3.HttpFilter { return httpFilter("envoy.filters.http.router", &routerv3.Router{}) }

func fault() *hcmv3.HttpFilter { return httpFilter("envoy.filters.http.fault", &faultv3.HTTPFault{}) }

// rds is a connection manager that takes its routes from RDS.
func rds(routeConfig string, filters ...*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	if filters == nil {
		filters = []*hcmv3.HttpFilter{router()}
	}
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				ResourceApiVersion:    corev3.ApiVersion_V3,
			},
			RouteConfigName: routeConfig,
		}},
		HttpFilters: filters,
	}
}

// inline is a connection manager with its route configuration inside.
func inline(rc *routev3.RouteConfiguration) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     "inbound",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    []*hcmv3.HttpFilter{router()},
	}
}

func hcmFilter(hcm *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
	}
}

func tcpProxyFilter(cluster string) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name: "envoy.filters.network.tcp_proxy",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpproxyv3.TcpProxy{
			StatPrefix:       "tcp",
			ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
		})},
	}
}

// listener is a socket listener on 127.0.0.1 with one filter chain per
// filter given.
func listener(name string, port uint32, filters ...*listenerv3.Filter) *listenerv3.Listener {
	l := &listenerv3.Listener{Name: name, Address: socketAddress("127.0.0.1", port)}
	for _, f := range filters {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{f}})
	}
	return l
}

// apiListenerOf is a gRPC client's listener: no socket, just a connection
// manager.
func apiListenerOf(name string, hcm *hcmv3.HttpConnectionManager) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
	}
}

func routeConfig(name string, vhosts ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhosts}
}

func virtualHost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

func prefixMatch() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
}

// toCluster routes everything to one cluster.
func toCluster(name, cluster string) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: prefixMatch(),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		}},
	}
}

// weighted is a cluster name and its weight.
type weighted struct {
	cluster string
	weight  uint32
}

// split routes everything to weighted clusters.
func split(name string, ws ...weighted) *routev3.Route {
	wc := &routev3.WeightedCluster{}
	for _, w := range ws {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
			Name:   w.cluster,
			Weight: wrapperspb.UInt32(w.weight),
		})
	}
	return &routev3.Route{
		Name:  name,
		Match: prefixMatch(),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc},
		}},
	}
}

// resources is a set of resources by type, as cache.NewSnapshot takes it,
// with helpers to change one resource.
type resources map[string][]types.Resource

// valid returns a complete, consistent set: EDS clusters with their
// endpoints, a static cluster, an HTTP listener with RDS, a TCP listener,
// an inbound listener with an inline route configuration, a gRPC API
// listener, and the route configurations they name.
func valid() resources {
	canary := split("default", weighted{v1Cluster, 90}, weighted{v2Cluster, 10})
	return resources{
		resourcev3.ClusterType: {
			edsCluster(v1Cluster, ""),
			edsCluster(v2Cluster, ""),
			edsCluster(dbCluster, dbService),
			staticCluster(inboundCluster, 50051),
		},
		resourcev3.EndpointType: {
			loadAssignment(v1Cluster, 50051, "10.0.0.1"),
			loadAssignment(v2Cluster, 50051, "10.0.0.2"),
			loadAssignment(dbService, 5432, "10.0.1.1"),
		},
		resourcev3.ListenerType: {
			listener(httpListener, 15001, hcmFilter(rds(sidecarRoutes))),
			listener(tcpListener, 5432, tcpProxyFilter(dbCluster)),
			listener(inboundListener, 50051, hcmFilter(inline(routeConfig(inboundCluster,
				virtualHost("inbound|http|50051", []string{"*"}, toCluster("default", inboundCluster)))))),
			apiListenerOf(apiListener, rds(grpcRoutes)),
		},
		resourcev3.RouteType: {
			routeConfig(sidecarRoutes,
				virtualHost("my-app.default.svc.cluster.local:80",
					[]string{"my-app", "my-app.default", "my-app.default.svc.cluster.local", "my-app:80"}, canary),
				virtualHost("allow_any", []string{"*"}, toCluster("passthrough", inboundCluster))),
			routeConfig(grpcRoutes,
				virtualHost("my-app.default.svc.cluster.local:80", []string{"my-app.default.svc.cluster.local:80"},
					proto.Clone(canary).(*routev3.Route))),
		},
	}
}

// find returns the resource of a type with a name (nil if there is none).
func (rs resources) find(typeURL, name string) types.Resource {
	for _, r := range rs[typeURL] {
		if n, ok := r.(interface{ GetName() string }); ok && n.GetName() == name {
			return r
		}
		if cla, ok := r.(*endpointv3.ClusterLoadAssignment); ok && cla.GetClusterName() == name {
			return r
		}
	}
	return nil
}

// remove drops the resource of a type with a name.
func (rs resources) remove(t *testing.T, typeURL, name string) {
	t.Helper()
	r := rs.find(typeURL, name)
	if r == nil {
		t.Fatalf("no %s %q to remove", typeURL, name)
	}
	list := rs[typeURL][:0]
	for _, x := range rs[typeURL] {
		if x != r {
			list = append(list, x)
		}
	}
	rs[typeURL] = list
}

// replace swaps the resource of a type with the same name as r for r.
func (rs resources) replace(t *testing.T, typeURL, name string, r types.Resource) {
	t.Helper()
	old := rs.find(typeURL, name)
	if old == nil {
		t.Fatalf("no %s %q to replace", typeURL, name)
	}
	for i, x := range rs[typeURL] {
		if x == old {
			rs[typeURL][i] = r
		}
	}
}
