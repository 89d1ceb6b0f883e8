package translator

// Transparent capture, the Kubernetes way. An init container installs
// iptables rules that redirect every outbound connection of the pod to
// Envoy's port 15001 and every inbound one to 15006; Envoy recovers where
// each connection was going (its original destination) and picks a
// listener or a filter chain by it. The application needs no HTTP_PROXY.
//
// Outbound, virtualOutbound (0.0.0.0:15001, use_original_dst) hands each
// connection to the listener of its original destination, without binding
// any of those listeners to a socket:
//   - "0.0.0.0_<port>" for a port on which some service speaks HTTP: an
//     HTTP connection manager with the route configuration "<port>", which
//     picks the service by Host (any of its names, or its addresses);
//   - "<address>_<port>" for a TCP port of a service that has an address
//     (spec.addresses; the ClusterIP in Kubernetes): a TCP proxy to the
//     service's cluster. A CIDR range cannot be a listener's address: it
//     becomes a filter chain matching the range on "0.0.0.0_<port>".
//
// A connection that no listener claims, and an HTTP request whose Host no
// service has, go to PassthroughCluster: to wherever the application sent
// them (Istio's outboundTrafficPolicy ALLOW_ANY). A TCP service without any
// address cannot be told from other traffic on its port, so its traffic
// passes through too, straight to the address the application resolved:
// without the service's load balancing, subsets or mTLS.
//
// The inbound side is in transparent_inbound.go. Clusters, endpoints and
// secrets are the same as in explicit mode.

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/minimesh/minimesh/mesh"
)

// wildcardAddress is the address of the listeners that match any
// destination address on their port.
const wildcardAddress = "0.0.0.0"

// translateTransparent builds a sidecar's config in transparent mode.
func (ix *index) translateTransparent(p Proxy, v *view) (*Resources, []error) {
	res := newResources()
	// The shared lists are copied by append (res starts empty), so adding
	// this proxy's own resources never writes into them.
	out := ix.sharedTransparentOutbound(v)
	res.Listeners = append(res.Listeners, out.listeners...)
	res.Clusters = append(res.Clusters, out.clusters...)
	errs := slices.Clone(out.errs)
	routes := ix.sharedTransparentRoutes(p.Namespace, v)
	res.Routes = append(res.Routes, routes.rcs...)
	errs = append(errs, routes.errs...)

	errs = append(errs, ix.addVirtualInbound(res, p)...)
	return res, append(errs, ix.addOutboundAndSecrets(res, p, v)...)
}

// outboundPort is what transparent mode recognises on one port number.
type outboundPort struct {
	number uint32
	// http are the services with an HTTP port of this number, by hostname.
	http []*mesh.Service
	// tcp are the addresses of services with a TCP port of this number, in
	// the order of the services' hostnames; each address appears once.
	tcp []serviceAddress
}

// serviceAddress is one address (a single IP or a range) of a service.
type serviceAddress struct {
	prefix netip.Prefix
	host   string
}

// single reports whether the address is one IP, which can have a listener
// of its own.
func (a serviceAddress) single() bool { return a.prefix.IsSingleIP() }

// outboundPorts lists, by port number, what transparent mode must
// recognise. When two services claim the same address on a TCP port, the
// first by hostname gets it (a listener has one destination); the other's
// traffic on that address goes to the first. Services on Envoy's own
// capture ports get no listener: "0.0.0.0_15001" would have
// virtualOutbound's address, which Envoy refuses.
func outboundPorts(services []*mesh.Service) []*outboundPort {
	byNumber := map[uint32]*outboundPort{}
	claimed := map[uint32]map[netip.Prefix]bool{}
	for _, svc := range services {
		for _, port := range svc.Ports {
			if port.Number == VirtualOutboundPort || port.Number == VirtualInboundPort {
				continue
			}
			op := byNumber[port.Number]
			if op == nil {
				op = &outboundPort{number: port.Number}
				byNumber[port.Number] = op
				claimed[port.Number] = map[netip.Prefix]bool{}
			}
			if port.Protocol.IsHTTP() {
				op.http = append(op.http, svc)
				continue
			}
			for _, prefix := range addressPrefixes(svc.Addresses) {
				if !claimed[port.Number][prefix] {
					claimed[port.Number][prefix] = true
					op.tcp = append(op.tcp, serviceAddress{prefix: prefix, host: svc.Hostname})
				}
			}
		}
	}
	out := make([]*outboundPort, 0, len(byNumber))
	for _, op := range byNumber {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out
}

// addressPrefixes parses a service's addresses (validated by mesh) as
// prefixes: an IP is a single-address prefix. An unspecified address
// (0.0.0.0, ::) would match every destination and is skipped.
func addressPrefixes(addresses []string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addresses {
		prefix, err := netip.ParsePrefix(a)
		if ip, ipErr := netip.ParseAddr(a); ipErr == nil {
			prefix, err = netip.PrefixFrom(ip, ip.BitLen()), nil
		}
		if err != nil || prefix.Addr().IsUnspecified() {
			continue
		}
		out = append(out, prefix.Masked())
	}
	return out
}

// transparentOutboundListeners builds virtualOutbound and the listeners it
// hands connections to, sorted by name.
func (ix *index) transparentOutboundListeners(v *view) ([]*listenerv3.Listener, []error) {
	var (
		out  []*listenerv3.Listener
		errs []error
	)
	vo, err := virtualOutboundListener()
	if err != nil {
		errs = append(errs, err)
	} else {
		out = append(out, vo)
	}
	for _, op := range outboundPorts(v.imported) {
		ls, err := outboundPortListeners(op)
		if err != nil {
			errs = append(errs, fmt.Errorf("outbound port %d: %w", op.number, err))
			continue
		}
		out = append(out, ls...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errs
}

// virtualOutboundListener receives every redirected outbound connection on
// 0.0.0.0:15001 and hands it to the listener of its original destination;
// connections no listener claims pass through.
func virtualOutboundListener() (*listenerv3.Listener, error) {
	f, err := tcpProxyFilter(PassthroughClusterName, PassthroughClusterName)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:               VirtualOutboundListenerName,
		Address:            SocketAddress(wildcardAddress, VirtualOutboundPort),
		UseOriginalDst:     wrapperspb.Bool(true),
		TrafficDirection:   corev3.TrafficDirection_OUTBOUND,
		DefaultFilterChain: &listenerv3.FilterChain{Name: PassthroughClusterName, Filters: []*listenerv3.Filter{f}},
	}, nil
}

// outboundPortListeners builds the listeners of one port: "0.0.0.0_<port>"
// when a service speaks HTTP on it or a TCP service has a range there, and
// "<ip>_<port>" for each single address of a TCP service.
func outboundPortListeners(op *outboundPort) ([]*listenerv3.Listener, error) {
	var out []*listenerv3.Listener
	var ranges []*listenerv3.FilterChain
	for _, a := range op.tcp {
		// Stats by cluster name, as Istio's: tcp.outbound|5432||db...*.
		cluster := OutboundClusterName(op.number, "", a.host)
		f, err := tcpProxyFilter(cluster, cluster)
		if err != nil {
			return nil, err
		}
		if a.single() {
			out = append(out, virtualListener(ListenerName(a.prefix.Addr().String(), op.number), a.prefix.Addr().String(), op.number,
				&listenerv3.FilterChain{Filters: []*listenerv3.Filter{f}}))
			continue
		}
		ranges = append(ranges, &listenerv3.FilterChain{
			Name:             VirtualHostName(a.host, op.number),
			FilterChainMatch: &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{cidrRange(a.prefix)}},
			Filters:          []*listenerv3.Filter{f},
		})
	}
	if len(op.http) == 0 && len(ranges) == 0 {
		return out, nil
	}
	name := ListenerName(wildcardAddress, op.number)
	// What the ranges do not claim: HTTP routed by Host, or, on a port
	// without HTTP, whatever the application asked for.
	var rest *listenerv3.Filter
	var err error
	if len(op.http) > 0 {
		rest, err = outboundHTTPFilter(name, op.number)
	} else {
		rest, err = tcpProxyFilter(PassthroughClusterName, PassthroughClusterName)
	}
	if err != nil {
		return nil, err
	}
	chains := append(ranges, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{rest}})
	return append(out, virtualListener(name, wildcardAddress, op.number, chains...)), nil
}

// virtualListener is an outbound listener that binds no socket: only
// virtualOutbound hands it connections.
func virtualListener(name, ip string, port uint32, chains ...*listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          SocketAddress(ip, port),
		BindToPort:       wrapperspb.Bool(false),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains:     chains,
	}
}

// outboundHTTPFilter is the HTTP connection manager of "0.0.0.0_<port>",
// routing with the route configuration "<port>".
func outboundHTTPFilter(listenerName string, port uint32) (*listenerv3.Filter, error) {
	hcm, err := HTTPConnectionManager(outboundStatPrefix(listenerName), RouteConfigName(port), nil)
	if err != nil {
		return nil, err
	}
	return hcmFilter(hcm)
}

// cidrRange is a prefix as a filter chain match.
func cidrRange(prefix netip.Prefix) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: prefix.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(prefix.Bits()))}
}

// transparentRouteConfigs builds the route configuration "<port>" of every
// port on which some service speaks HTTP, for proxies in namespace ns
// (short names depend on it), sorted by name.
func (ix *index) transparentRouteConfigs(ns string, v *view) ([]*routev3.RouteConfiguration, []error) {
	var (
		out  []*routev3.RouteConfiguration
		errs []error
	)
	for _, op := range outboundPorts(v.imported) {
		if len(op.http) == 0 {
			continue
		}
		rc, err := ix.portRouteConfig(op, ns)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, rc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errs
}

// portRouteConfig has one virtual host per service with an HTTP port op,
// routed as in explicit mode, and a last one, allow_any, that passes any
// other Host through. A virtual host whose routes cannot be built is left
// out (its requests pass through) and reported.
func (ix *index) portRouteConfig(op *outboundPort, ns string) (*routev3.RouteConfiguration, error) {
	rc := RouteConfiguration(RouteConfigName(op.number))
	taken := map[string]bool{}
	var errs []error
	for _, svc := range op.http {
		domains := ix.transparentDomains(svc, op.number, ns, taken)
		if len(domains) == 0 {
			continue
		}
		routes, err := ix.routesFor(svc, op.number, FlavorEnvoy, map[clusterRef]bool{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rc.VirtualHosts = append(rc.VirtualHosts, VirtualHost(VirtualHostName(svc.Hostname, op.number), domains, routes...))
	}
	rc.VirtualHosts = append(rc.VirtualHosts, VirtualHost(AllowAnyVirtualHostName, []string{"*"}, passthroughRoute()))
	if len(errs) > 0 {
		return rc, fmt.Errorf("route configuration %s: %v", rc.Name, errs)
	}
	return rc, nil
}

// transparentDomains lists the Host values that select a service port in
// transparent mode: every name of the service, with and without the port
// (a client leaves out the port it thinks is the default, and the port the
// connection went to is known anyway), and each IP address of the service,
// with and without the port. Domains already taken by another virtual host
// are skipped: Envoy rejects a domain in two virtual hosts.
func (ix *index) transparentDomains(svc *mesh.Service, port uint32, ns string, taken map[string]bool) []string {
	out := ix.domains(svc, port, ns, true, taken)
	suffix := ":" + strconv.FormatUint(uint64(port), 10)
	for _, prefix := range addressPrefixes(svc.Addresses) {
		if !prefix.IsSingleIP() {
			continue // a range is no Host value
		}
		host := prefix.Addr().String()
		if prefix.Addr().Is6() {
			host = "[" + host + "]" // as it appears in a Host header
		}
		for _, d := range []string{host, host + suffix} {
			if !taken[d] {
				taken[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// passthroughRoute sends every request to where the application sent it,
// without a timeout (Envoy's default of 15 s would cut long requests to
// services the mesh does not know).
func passthroughRoute() *routev3.Route {
	return &routev3.Route{
		Name:  AllowAnyVirtualHostName,
		Match: PrefixMatch("/"),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: PassthroughClusterName},
			Timeout:          durationpb.New(0),
		}},
	}
}
