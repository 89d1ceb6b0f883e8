package translator

// Small constructors for listeners, HTTP connection managers and routes,
// named after the Envoy type they build.

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// Well-known Envoy extension names.
const (
	hcmFilterName      = "envoy.filters.network.http_connection_manager"
	tcpProxyFilterName = "envoy.filters.network.tcp_proxy"
	routerFilterName   = "envoy.filters.http.router"
	tlsInspectorName   = "envoy.filters.listener.tls_inspector"
	originalDstName    = "envoy.filters.listener.original_dst"
)

// HTTPConnectionManager builds the HCM network filter. Exactly one of rds
// (a route configuration name fetched over ADS) or inline is set. The router
// filter comes last, as both Envoy and gRPC require.
func HTTPConnectionManager(statPrefix, rds string, inline *routev3.RouteConfiguration) (*hcmv3.HttpConnectionManager, error) {
	router, err := anyOf(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       routerFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router},
		}},
	}
	if inline != nil {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: inline}
	} else {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsConfigSource(),
			RouteConfigName: rds,
		}}
	}
	return hcm, nil
}

// NetworkFilter wraps an HCM or TCP proxy config as a listener filter.
func hcmFilter(hcm *hcmv3.HttpConnectionManager) (*listenerv3.Filter, error) {
	a, err := anyOf(hcm)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: hcmFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, nil
}

// tcpProxyFilter forwards raw TCP to one cluster.
func tcpProxyFilter(statPrefix, cluster string) (*listenerv3.Filter, error) {
	a, err := anyOf(&tcpproxyv3.TcpProxy{
		StatPrefix:       statPrefix,
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
	})
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: tcpProxyFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, nil
}

// Listener is a socket listener with one filter chain.
func Listener(name, ip string, port uint32, filters ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         name,
		Address:      SocketAddress(ip, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}
}

// APIListener is a listener with no socket: a proxyless gRPC client uses it
// to learn how to route calls to one dial target.
func APIListener(name string, hcm *hcmv3.HttpConnectionManager) (*listenerv3.Listener, error) {
	a, err := anyOf(hcm)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: a}}, nil
}

// RouteConfiguration groups virtual hosts under one name.
func RouteConfiguration(name string, vhosts ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhosts}
}

// VirtualHost serves requests whose Host/:authority is one of domains.
func VirtualHost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

// PrefixMatch matches every path starting with prefix ("/" matches all).
func PrefixMatch(prefix string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}}
}

// tlsInspectorFilter detects TLS (and SNI, ALPN) on new connections, for
// filter chains that match on the transport protocol.
func tlsInspectorFilter() (*listenerv3.ListenerFilter, error) {
	a, err := anyOf(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return nil, err
	}
	return &listenerv3.ListenerFilter{Name: tlsInspectorName, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}}, nil
}

// originalDstFilter restores the destination a connection had before
// iptables redirected it, so that filter chains can match on it and
// ORIGINAL_DST clusters can connect to it.
func originalDstFilter() (*listenerv3.ListenerFilter, error) {
	a, err := anyOf(&originaldstv3.OriginalDst{})
	if err != nil {
		return nil, err
	}
	return &listenerv3.ListenerFilter{Name: originalDstName, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}}, nil
}
