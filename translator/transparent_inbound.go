package translator

// The inbound side of an Envoy sidecar in transparent mode: iptables
// redirects every connection that arrives for the workload to
// virtualInbound (0.0.0.0:15006). The original_dst listener filter restores
// the port the caller connected to, and a filter chain per port the
// workload serves takes it from there, with the same mTLS treatment and
// the same "inbound|<port>||" clusters (the application on 127.0.0.1) as
// explicit mode's inbound listeners. A last chain, for ports no service
// declares, passes the connection through to the application at the
// address the caller asked for.

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/minimesh/minimesh/mesh"
)

// addVirtualInbound adds virtualInbound and the inbound clusters of its
// chains. A proxy outside the mesh gets it too (iptables redirects its
// inbound traffic all the same), with the passthrough chain only.
func (ix *index) addVirtualInbound(res *Resources, p Proxy) []error {
	l := &listenerv3.Listener{
		Name:             VirtualInboundListenerName,
		Address:          SocketAddress(wildcardAddress, VirtualInboundPort),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
	}
	var errs []error
	if p.Workload != nil {
		for _, in := range ix.inboundPorts(p.Workload) {
			in.mode = ix.inboundMode(p.Workload, in.port)
			chains, c, err := inboundPortChains(in)
			if err != nil {
				errs = append(errs, fmt.Errorf("inbound port %d: %w", in.port, err))
				continue
			}
			l.FilterChains = append(l.FilterChains, chains...)
			res.Clusters = append(res.Clusters, c)
		}
	}
	passthrough, err := inboundPassthroughChains(ix.passthroughMode(p))
	if err != nil {
		return append(errs, fmt.Errorf("listener %s: %w", l.Name, err))
	}
	l.FilterChains = append(l.FilterChains, passthrough...)

	filters, err := virtualInboundListenerFilters(needsTLSInspector(l.FilterChains))
	if err != nil {
		return append(errs, fmt.Errorf("listener %s: %w", l.Name, err))
	}
	l.ListenerFilters = filters
	res.Listeners = append(res.Listeners, l)
	return errs
}

// inboundPortChains builds the chains of virtualInbound for one port the
// workload serves, and the cluster that reaches the application: the
// chains of explicit mode's inbound listener, each also matching the
// destination port.
func inboundPortChains(in inboundPort) ([]*listenerv3.FilterChain, *clusterv3.Cluster, error) {
	chains, c, err := inboundChains(in)
	if err != nil {
		return nil, nil, err
	}
	for _, chain := range chains {
		if chain.FilterChainMatch == nil {
			chain.FilterChainMatch = &listenerv3.FilterChainMatch{}
		}
		chain.FilterChainMatch.DestinationPort = wrapperspb.UInt32(in.port)
	}
	return chains, c, nil
}

// passthroughMode is the mTLS treatment of ports no service declares: the
// workload's own mode (its policies without port-level settings) when that
// is STRICT, so that STRICT keeps plaintext out of every port as in Istio;
// otherwise none, and the bytes go through untouched. Mesh clients send
// plaintext to such ports (their passthrough has no mTLS), so terminating
// TLS there would only break applications that speak TLS themselves. A
// proxy without an identity cannot terminate mTLS at all.
func (ix *index) passthroughMode(p Proxy) mesh.MTLSMode {
	if p.Workload != nil && ix.inboundMode(p.Workload, 0) == mesh.MTLSStrict {
		return mesh.MTLSStrict
	}
	return mesh.MTLSDisable
}

// inboundPassthroughChains are the last chains of virtualInbound: no
// destination port to match, so they take the ports the others do not.
func inboundPassthroughChains(mode mesh.MTLSMode) ([]*listenerv3.FilterChain, error) {
	return mtlsFilterChains(mode, func(mtls bool) (*listenerv3.FilterChain, error) {
		kind := chainKind(mtls)
		f, err := tcpProxyFilter(statPrefixInbound+"passthrough_"+kind, InboundPassthroughClusterName)
		if err != nil {
			return nil, err
		}
		return filterChain(InboundPassthroughFilterChainName+"|"+kind, f, mtls)
	})
}

// virtualInboundListenerFilters restores the original destination, then,
// when a chain needs it, detects TLS.
func virtualInboundListenerFilters(tlsInspector bool) ([]*listenerv3.ListenerFilter, error) {
	od, err := originalDstFilter()
	if err != nil {
		return nil, err
	}
	out := []*listenerv3.ListenerFilter{od}
	if tlsInspector {
		ti, err := tlsInspectorFilter()
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// passthroughClusters are the ORIGINAL_DST clusters of transparent mode.
// InboundPassthroughCluster connects from 127.0.0.6 (see
// inboundPassthroughSourceAddress), as Istio's does.
func passthroughClusters() []*clusterv3.Cluster {
	in := OriginalDstCluster(InboundPassthroughClusterName)
	in.UpstreamBindConfig = &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{
		Address:       inboundPassthroughSourceAddress,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
	}}
	return []*clusterv3.Cluster{in, OriginalDstCluster(PassthroughClusterName)}
}
