package translator

// The inbound side of an Envoy sidecar in explicit mode: for every port on
// which the workload serves a service, Envoy listens on the workload's
// address and hands the traffic to the application on 127.0.0.1, same port.

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/minimesh/minimesh/mesh"
)

// appAddress is where the application listens, beside its sidecar.
const appAddress = "127.0.0.1"

// inboundPort is one port on which a workload receives traffic.
type inboundPort struct {
	port     uint32
	protocol mesh.Protocol
	mode     mesh.MTLSMode // what the workload accepts there
}

// inboundPorts lists the ports on which workload w receives service traffic:
// for every service endpoint backed by w, the endpoint port of each service
// port. When two services disagree on a port's protocol, HTTP wins.
func (ix *index) inboundPorts(w *mesh.Workload) []inboundPort {
	byPort := map[uint32]mesh.Protocol{}
	for _, svc := range ix.snap.Services {
		for _, ep := range svc.Endpoints {
			if ep.Workload != w {
				continue
			}
			for _, p := range svc.Ports {
				n := ep.PortFor(p)
				if old, seen := byPort[n]; !seen || (!old.IsHTTP() && p.Protocol.IsHTTP()) {
					byPort[n] = p.Protocol
				}
			}
		}
	}
	out := make([]inboundPort, 0, len(byPort))
	for n, proto := range byPort {
		out = append(out, inboundPort{port: n, protocol: proto})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].port < out[j].port })
	return out
}

// addInbound adds a listener and a local cluster per inbound port of the
// proxy's workload. Out-of-mesh clients have none.
func (ix *index) addInbound(res *Resources, p Proxy) []error {
	if p.Workload == nil {
		return nil
	}
	bind := "0.0.0.0"
	if isIP(p.Workload.Address) {
		bind = p.Workload.Address
	}
	var errs []error
	for _, in := range ix.inboundPorts(p.Workload) {
		in.mode = ix.inboundMode(p.Workload, in.port)
		l, c, err := inboundListener(bind, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("inbound port %d: %w", in.port, err))
			continue
		}
		res.Listeners = append(res.Listeners, l)
		res.Clusters = append(res.Clusters, c)
	}
	return errs
}

// inboundListener builds the listener for one inbound port and the cluster
// that reaches the application. HTTP ports get an HTTP connection manager
// (so Envoy's HTTP stats and, later, policies apply); others a TCP proxy.
//
// The mTLS mode decides the filter chains: STRICT has one chain that
// requires a client certificate from the mesh; DISABLE one plaintext chain;
// PERMISSIVE both, told apart by the TLS inspector (transport protocol
// "tls" or "raw_buffer"). Each chain has its own stat prefix, so Envoy's
// stats show how much traffic still arrives in plaintext.
func inboundListener(bind string, in inboundPort) (*listenerv3.Listener, *clusterv3.Cluster, error) {
	clusterName := InboundClusterName(in.port)
	c := StaticCluster(clusterName, clusterv3.Cluster_STATIC,
		ClusterLoadAssignment(clusterName, LbEndpoint(appAddress, in.port, 0)))
	if err := useHTTP2Upstream(c, in.protocol.IsHTTP2(), nil); err != nil {
		return nil, nil, err
	}
	l := &listenerv3.Listener{Name: ListenerName(bind, in.port), Address: SocketAddress(bind, in.port)}
	if in.mode != mesh.MTLSStrict && in.mode != mesh.MTLSDisable && in.mode != mesh.MTLSPermissive {
		in.mode = mesh.MTLSPermissive // no policy: Istio's default
	}
	if in.mode != mesh.MTLSDisable {
		chain, err := inboundChain(in, clusterName, true)
		if err != nil {
			return nil, nil, err
		}
		l.FilterChains = append(l.FilterChains, chain)
	}
	if in.mode != mesh.MTLSStrict {
		chain, err := inboundChain(in, clusterName, false)
		if err != nil {
			return nil, nil, err
		}
		l.FilterChains = append(l.FilterChains, chain)
	}
	if in.mode == mesh.MTLSPermissive {
		inspector, err := anyOf(&tlsinspectorv3.TlsInspector{})
		if err != nil {
			return nil, nil, err
		}
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       tlsInspectorName,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
		}}
		l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
		l.FilterChains[1].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}
	}
	return l, c, nil
}

// inboundChain is one inbound filter chain, with mesh mTLS or in plaintext.
func inboundChain(in inboundPort, clusterName string, mtls bool) (*listenerv3.FilterChain, error) {
	kind := "plaintext"
	if mtls {
		kind = "mtls"
	}
	statPrefix := fmt.Sprintf("%s%d_%s", statPrefixInbound, in.port, kind)
	var filter *listenerv3.Filter
	var err error
	if in.protocol.IsHTTP() {
		rc := RouteConfiguration(InboundRouteConfigName(in.port),
			VirtualHost(InboundVirtualHostName(in.port), []string{"*"}, inboundRoute(clusterName)))
		hcm, herr := HTTPConnectionManager(statPrefix, "", rc)
		if herr != nil {
			return nil, herr
		}
		if mtls {
			// Tell the application who called: the client's SPIFFE ID in
			// x-forwarded-client-cert.
			hcm.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
			hcm.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true}
		}
		filter, err = hcmFilter(hcm)
	} else {
		filter, err = tcpProxyFilter(statPrefix, clusterName)
	}
	if err != nil {
		return nil, err
	}
	chain := &listenerv3.FilterChain{Name: InboundFilterChainName(in.port) + "|" + kind, Filters: []*listenerv3.Filter{filter}}
	if mtls {
		ts, err := TransportSocket(DownstreamMTLS(FlavorEnvoy))
		if err != nil {
			return nil, err
		}
		chain.TransportSocket = ts
	}
	return chain, nil
}
