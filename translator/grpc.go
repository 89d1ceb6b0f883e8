package translator

// Proxyless gRPC. A gRPC client dialing "xds:///my-app" asks for the
// listener "my-app": an API listener whose HTTP connection manager names a
// route configuration, whose routes name clusters, whose endpoints are the
// addresses to call. A gRPC server built with xds.NewGRPCServer asks for
// "grpc/server?xds.resource.listening_address=<ip>:<port>".
//
// gRPC asks for resources by exact name, so a gRPC proxy gets exactly what
// its listeners lead to and nothing else.

import (
	"fmt"
	"sort"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/minimesh/minimesh/mesh"
)

// translateGRPC builds the listeners a gRPC proxy subscribed to and what
// they reference.
func (ix *index) translateGRPC(p Proxy) (*Resources, []error) {
	res := newResources()
	var errs []error
	used := map[clusterRef]bool{}
	routeConfigs := map[string]bool{}

	for _, name := range p.ListenerNames {
		if ip, port, ok := parseGRPCServerListenerName(name); ok {
			l, err := grpcServerListener(name, ip, port, ix.grpcServerMTLS(p.Workload, port))
			if err != nil {
				errs = append(errs, fmt.Errorf("listener %s: %w", name, err))
				continue
			}
			res.Listeners = append(res.Listeners, l)
			continue
		}
		svc, port, ok := ix.resolveTarget(name, p.Namespace)
		if !ok {
			continue // unknown target: gRPC is told the listener does not exist
		}
		rcName := GRPCRouteConfigName(svc.Hostname, port)
		l, err := grpcAPIListener(name, rcName)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %s: %w", name, err))
			continue
		}
		res.Listeners = append(res.Listeners, l)
		if routeConfigs[rcName] {
			continue
		}
		routeConfigs[rcName] = true
		routes, err := ix.routesFor(svc, port, FlavorGRPC, used)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vh := VirtualHost(VirtualHostName(svc.Hostname, port), ix.grpcDomains(svc, port, p.Namespace), routes...)
		res.Routes = append(res.Routes, RouteConfiguration(rcName, vh))
	}

	refs := make([]clusterRef, 0, len(used))
	for ref := range used {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].name() < refs[j].name() })
	errs = append(errs, ix.addClusters(res, refs, FlavorGRPC, p.hasIdentity())...)
	return res, errs
}

// resolveTarget finds the service and port a dial target means. Without a
// port, a service with one port uses it, and a service with several uses 80
// if it has it.
func (ix *index) resolveTarget(target, ns string) (*mesh.Service, uint32, bool) {
	host, port, err := splitTarget(target)
	if err != nil {
		return nil, 0, false
	}
	svc := ix.resolve(host, ns)
	if svc == nil {
		return nil, 0, false
	}
	switch {
	case port != 0:
		if svc.Port(port) == nil {
			return nil, 0, false
		}
	case len(svc.Ports) == 1:
		port = svc.Ports[0].Number
	case svc.Port(80) != nil:
		port = 80
	default:
		return nil, 0, false
	}
	return svc, port, true
}

// grpcDomains are the authorities a gRPC client may use for a service port.
// Route configurations are per target, so there is no conflict to avoid.
func (ix *index) grpcDomains(svc *mesh.Service, port uint32, ns string) []string {
	return ix.domains(svc, port, ns, true, map[string]bool{})
}

// grpcAPIListener is the API listener for one dial target.
func grpcAPIListener(name, routeConfig string) (*listenerv3.Listener, error) {
	hcm, err := HTTPConnectionManager(name, routeConfig, nil)
	if err != nil {
		return nil, err
	}
	return APIListener(name, hcm)
}

// grpcServerMTLS reports whether a proxyless gRPC server requires mTLS on
// port: only when it is STRICT. gRPC cannot serve TLS and plaintext on one
// port (it ignores filter chains that match on transport protocol), so a
// PERMISSIVE proxyless server serves plaintext, to mesh clients too (auto
// mTLS sends plaintext to a PERMISSIVE endpoint without a sidecar, see
// endpointMTLS). Flipping it to STRICT switches both sides to mTLS at once.
// A server that names no workload has no identity and serves plaintext.
func (ix *index) grpcServerMTLS(w *mesh.Workload, port uint32) bool {
	return w != nil && ix.inboundMode(w, port) == mesh.MTLSStrict
}

// grpcServerListener tells a gRPC server on ip:port how to handle incoming
// connections: with an HTTP connection manager whose only route accepts
// every call (non_forwarding_action: the server handles it itself), over
// mTLS (certificates from gRPC's certificate provider) when mtls is set.
func grpcServerListener(name, ip string, port uint32, mtls bool) (*listenerv3.Listener, error) {
	rc := RouteConfiguration(InboundRouteConfigName(port),
		VirtualHost(InboundVirtualHostName(port), []string{"*"}, &routev3.Route{
			Name:   "default",
			Match:  PrefixMatch("/"),
			Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
		}))
	hcm, err := HTTPConnectionManager(statPrefixInbound+fmt.Sprint(port), "", rc)
	if err != nil {
		return nil, err
	}
	f, err := hcmFilter(hcm)
	if err != nil {
		return nil, err
	}
	l := Listener(name, ip, port, f)
	l.FilterChains[0].Name = InboundFilterChainName(port)
	if mtls {
		ts, err := TransportSocket(DownstreamMTLS(FlavorGRPC))
		if err != nil {
			return nil, err
		}
		l.FilterChains[0].TransportSocket = ts
		l.FilterChains[0].Name += "|mtls"
	}
	return l, nil
}
