package translator

// The inbound side of an Envoy sidecar in explicit mode: for every port on
// which the workload serves a service, Envoy listens on the workload's
// address and hands the traffic to the application on 127.0.0.1, same port.

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
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
//
// The ports of every workload are found in one pass over the services,
// the first time any proxy asks.
func (ix *index) inboundPorts(w *mesh.Workload) []inboundPort {
	ix.inboundOnce.Do(ix.indexInboundPorts)
	return ix.inbound[w]
}

// indexInboundPorts finds the inbound ports of every workload.
func (ix *index) indexInboundPorts() {
	byWorkload := map[*mesh.Workload]map[uint32]mesh.Protocol{}
	for _, svc := range ix.snap.Services {
		for _, ep := range svc.Endpoints {
			if ep.Workload == nil {
				continue
			}
			byPort := byWorkload[ep.Workload]
			if byPort == nil {
				byPort = map[uint32]mesh.Protocol{}
				byWorkload[ep.Workload] = byPort
			}
			for _, p := range svc.Ports {
				n := ep.PortFor(p)
				if old, seen := byPort[n]; !seen || (!old.IsHTTP() && p.Protocol.IsHTTP()) {
					byPort[n] = p.Protocol
				}
			}
		}
	}
	ix.inbound = make(map[*mesh.Workload][]inboundPort, len(byWorkload))
	for w, byPort := range byWorkload {
		out := make([]inboundPort, 0, len(byPort))
		for n, proto := range byPort {
			out = append(out, inboundPort{port: n, protocol: proto})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].port < out[j].port })
		ix.inbound[w] = out
	}
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
		key := inboundKey{bind, in}
		b, ok := lookup(ix.carry, inboundOf, key)
		if !ok {
			var err error
			if b.listener, b.cluster, err = inboundListener(bind, in); err != nil {
				errs = append(errs, fmt.Errorf("inbound port %d: %w", in.port, err))
				continue
			}
			store(ix.carry, inboundOf, key, b)
		}
		res.Listeners = append(res.Listeners, b.listener)
		res.Clusters = append(res.Clusters, b.cluster)
	}
	return errs
}

// inboundListener builds the listener for one inbound port and the cluster
// that reaches the application. HTTP ports get an HTTP connection manager
// (so Envoy's HTTP stats and, later, policies apply); others a TCP proxy.
func inboundListener(bind string, in inboundPort) (*listenerv3.Listener, *clusterv3.Cluster, error) {
	chains, c, err := inboundChains(in)
	if err != nil {
		return nil, nil, err
	}
	l := &listenerv3.Listener{Name: ListenerName(bind, in.port), Address: SocketAddress(bind, in.port), FilterChains: chains}
	if needsTLSInspector(chains) {
		inspector, err := tlsInspectorFilter()
		if err != nil {
			return nil, nil, err
		}
		l.ListenerFilters = []*listenerv3.ListenerFilter{inspector}
	}
	return l, c, nil
}

// inboundChains builds the filter chains that serve one inbound port under
// its mTLS mode, and the cluster they hand traffic to: the same in
// explicit mode's listener and in transparent mode's virtualInbound.
func inboundChains(in inboundPort) ([]*listenerv3.FilterChain, *clusterv3.Cluster, error) {
	c, err := inboundCluster(in)
	if err != nil {
		return nil, nil, err
	}
	chains, err := mtlsFilterChains(in.mode, func(mtls bool) (*listenerv3.FilterChain, error) {
		return inboundChain(in, c.Name, mtls)
	})
	if err != nil {
		return nil, nil, err
	}
	return chains, c, nil
}

// inboundCluster reaches the application on 127.0.0.1, on the port the
// traffic arrived for.
func inboundCluster(in inboundPort) (*clusterv3.Cluster, error) {
	name := InboundClusterName(in.port)
	c := StaticCluster(name, clusterv3.Cluster_STATIC, ClusterLoadAssignment(name, LbEndpoint(appAddress, in.port, 0)))
	if err := useHTTP2Upstream(c, in.protocol.IsHTTP2(), nil); err != nil {
		return nil, err
	}
	return c, nil
}

// mtlsFilterChains builds the filter chains that serve one port under an
// mTLS mode, with chain building each (with mesh mTLS or in plaintext):
// STRICT has one chain that requires a client certificate from the mesh;
// DISABLE one plaintext chain; PERMISSIVE both, told apart by the TLS
// inspector (transport protocol "tls" or "raw_buffer"). Each chain has its
// own stat prefix, so Envoy's stats show how much traffic still arrives in
// plaintext. No mode (or an unknown one) is PERMISSIVE, Istio's default.
func mtlsFilterChains(mode mesh.MTLSMode, chain func(mtls bool) (*listenerv3.FilterChain, error)) ([]*listenerv3.FilterChain, error) {
	if mode != mesh.MTLSStrict && mode != mesh.MTLSDisable {
		mode = mesh.MTLSPermissive
	}
	var chains []*listenerv3.FilterChain
	for _, mtls := range []bool{true, false} {
		if (mtls && mode == mesh.MTLSDisable) || (!mtls && mode == mesh.MTLSStrict) {
			continue
		}
		c, err := chain(mtls)
		if err != nil {
			return nil, err
		}
		if mode == mesh.MTLSPermissive {
			c.FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: transportProtocol(mtls)}
		}
		chains = append(chains, c)
	}
	return chains, nil
}

// transportProtocol is what the TLS inspector reports for a connection
// with or without TLS.
func transportProtocol(tls bool) string {
	if tls {
		return "tls"
	}
	return "raw_buffer"
}

// needsTLSInspector reports whether any chain matches on the transport
// protocol, which only the TLS inspector listener filter detects.
func needsTLSInspector(chains []*listenerv3.FilterChain) bool {
	for _, c := range chains {
		if c.GetFilterChainMatch().GetTransportProtocol() != "" {
			return true
		}
	}
	return false
}

// inboundChain is one inbound filter chain, with mesh mTLS or in plaintext.
func inboundChain(in inboundPort, clusterName string, mtls bool) (*listenerv3.FilterChain, error) {
	kind := chainKind(mtls)
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
	return filterChain(InboundFilterChainName(in.port)+"|"+kind, filter, mtls)
}

// filterChain is a chain of one network filter that, with mtls, first
// terminates mesh mTLS (the client must show a mesh certificate).
func filterChain(name string, filter *listenerv3.Filter, mtls bool) (*listenerv3.FilterChain, error) {
	chain := &listenerv3.FilterChain{Name: name, Filters: []*listenerv3.Filter{filter}}
	if mtls {
		ts, err := TransportSocket(DownstreamMTLS(FlavorEnvoy))
		if err != nil {
			return nil, err
		}
		chain.TransportSocket = ts
	}
	return chain, nil
}

// chainKind names a chain's security in chain names and stat prefixes.
func chainKind(mtls bool) string {
	if mtls {
		return "mtls"
	}
	return "plaintext"
}
