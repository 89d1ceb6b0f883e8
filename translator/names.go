package translator

// This file owns every name minimesh gives to an Envoy resource. Names are a
// public API: people grep Envoy stats, access logs and config dumps for them,
// and dashboards are built on them. They follow Istio's conventions where
// Istio has one, so that what people know from Istio carries over. Change
// nothing here without a very good reason.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// OutboundClusterName is the cluster that sends traffic to one port of a
// service, optionally restricted to one subset:
// "outbound|80|v1|my-app.default.svc.cluster.local", or
// "outbound|80||my-app.default.svc.cluster.local" for the whole service.
// Envoy EDS clusters use the same string as their EDS service name.
func OutboundClusterName(port uint32, subset, host string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}

// InboundClusterName is the cluster through which a sidecar hands inbound
// traffic for port to the application on localhost: "inbound|8080||".
func InboundClusterName(port uint32) string {
	return "inbound|" + strconv.FormatUint(uint64(port), 10) + "||"
}

// ListenerName names an Envoy listener by the address it binds:
// "127.0.0.1_15001", "10.0.0.5_8080", "0.0.0.0_8080".
func ListenerName(ip string, port uint32) string {
	return ip + "_" + strconv.FormatUint(uint64(port), 10)
}

// RouteConfigName is the route configuration an Envoy listener on port uses
// over RDS. Route configurations are named after the port they serve ("80",
// "15001"), as in Istio.
func RouteConfigName(port uint32) string {
	return strconv.FormatUint(uint64(port), 10)
}

// InboundRouteConfigName is the inline route configuration of an inbound
// listener: "inbound|8080||".
func InboundRouteConfigName(port uint32) string {
	return InboundClusterName(port)
}

// InboundVirtualHostName names the virtual host of an inbound listener:
// "inbound|http|8080".
func InboundVirtualHostName(port uint32) string {
	return "inbound|http|" + strconv.FormatUint(uint64(port), 10)
}

// InboundFilterChainName names the filter chain that serves inbound
// traffic on port: "inbound|8080". gRPC servers report it in their logs.
func InboundFilterChainName(port uint32) string {
	return "inbound|" + strconv.FormatUint(uint64(port), 10)
}

// VirtualHostName names the virtual host that serves one service port:
// "my-app.default.svc.cluster.local:80".
func VirtualHostName(host string, port uint32) string {
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// GRPCRouteConfigName is the route configuration of a proxyless gRPC client's
// API listener: the service's host and port,
// "my-app.default.svc.cluster.local:80", shared by every target that means
// that service port ("my-app", "my-app.default:80", ...).
func GRPCRouteConfigName(host string, port uint32) string {
	return VirtualHostName(host, port)
}

// OutboundHTTPProxyPort is where an Envoy sidecar in explicit mode listens for
// outbound HTTP from its application (set HTTP_PROXY=http://127.0.0.1:15001).
const OutboundHTTPProxyPort = 15001

// Stat prefixes of the HTTP connection managers; they appear in Envoy stats
// as http.<prefix>.*.
const (
	statPrefixOutbound = "outbound_http"
	statPrefixInbound  = "inbound_"
)

// Transparent capture (iptables): the names Istio uses, so that
// dashboards, runbooks and habits carry over.
const (
	// VirtualOutboundPort is where iptables redirects the application's
	// outbound connections. The same port as explicit mode's HTTP proxy: a
	// sidecar is in one mode or the other.
	VirtualOutboundPort = OutboundHTTPProxyPort
	// VirtualInboundPort is where iptables redirects the connections that
	// arrive for the workload.
	VirtualInboundPort = 15006

	// VirtualOutboundListenerName is the listener on 0.0.0.0:15001 that
	// receives every redirected outbound connection and hands it to the
	// listener of its original destination (use_original_dst), or passes it
	// through when there is none.
	VirtualOutboundListenerName = "virtualOutbound"
	// VirtualInboundListenerName is the listener on 0.0.0.0:15006 that
	// receives every redirected inbound connection and picks a filter chain
	// by its original destination port.
	VirtualInboundListenerName = "virtualInbound"

	// PassthroughClusterName is the cluster that sends outbound traffic to
	// the address the application asked for (an ORIGINAL_DST cluster):
	// destinations the mesh does not know pass through, as with Istio's
	// outboundTrafficPolicy ALLOW_ANY.
	PassthroughClusterName = "PassthroughCluster"
	// InboundPassthroughClusterName is the cluster that hands inbound
	// traffic for a port no service declares to the application, at the
	// address the caller asked for.
	InboundPassthroughClusterName = "InboundPassthroughCluster"

	// AllowAnyVirtualHostName is the last virtual host of every outbound
	// route configuration in transparent mode: it matches any Host ("*")
	// and sends the request to PassthroughCluster.
	AllowAnyVirtualHostName = "allow_any"

	// InboundPassthroughFilterChainName is the filter chain of
	// virtualInbound for ports that no service declares.
	InboundPassthroughFilterChainName = "inbound-passthrough"

	// inboundPassthroughSourceAddress is the source address of the
	// connections InboundPassthroughCluster opens to the application, as in
	// Istio: the iptables rules let traffic from 127.0.0.6 leave the
	// loopback interface unredirected, which keeps it from looping back
	// into the sidecar.
	inboundPassthroughSourceAddress = "127.0.0.6"
)

// outboundStatPrefix is the stat prefix of an outbound listener in
// transparent mode: "outbound_0.0.0.0_80", "outbound_10.96.0.20_5432".
func outboundStatPrefix(listenerName string) string {
	return "outbound_" + listenerName
}

// grpcServerListenerPrefix is what gRPC's server_listener_resource_name_template
// puts before the listening address, "grpc/server?xds.resource.listening_address=".
// minimesh's gRPC bootstraps use exactly this template.
const grpcServerListenerPrefix = "grpc/server?xds.resource.listening_address="

// GRPCServerListenerName is the listener a proxyless gRPC server listening on
// hostPort ("0.0.0.0:9090", "[::]:9090") asks for.
func GRPCServerListenerName(hostPort string) string {
	return grpcServerListenerPrefix + hostPort
}

// parseGRPCServerListenerName returns the address and port inside a gRPC
// server listener name, or ok=false if name is not one.
func parseGRPCServerListenerName(name string) (ip string, port uint32, ok bool) {
	hostPort, found := strings.CutPrefix(name, grpcServerListenerPrefix)
	if !found {
		return "", 0, false
	}
	host, p, err := net.SplitHostPort(hostPort)
	if err != nil || net.ParseIP(host) == nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return host, uint32(n), true
}

// SNI is the TLS server name a client sends to a mesh endpoint, Istio's
// format: "outbound_.80_.v1_.my-app.default.svc.cluster.local".
func SNI(port uint32, subset, host string) string {
	return "outbound_." + strconv.FormatUint(uint64(port), 10) + "_." + subset + "_." + host
}

// SecretName constants are the SDS secrets every sidecar asks for.
const (
	SecretWorkloadCert = "default"
	SecretRootCA       = "ROOTCA"
)

// splitTarget splits a gRPC dial target "host" or "host:port". Port is 0
// when absent.
func splitTarget(target string) (host string, port uint32, err error) {
	if !strings.Contains(target, ":") {
		return target, 0, nil
	}
	h, p, err := net.SplitHostPort(target)
	if err != nil {
		return "", 0, fmt.Errorf("target %q: %w", target, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("target %q: bad port %q", target, p)
	}
	return h, uint32(n), nil
}
