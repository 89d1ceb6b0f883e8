package translator

// Outbound clusters: one per service port, plus one per service port and
// DestinationRule subset. A DestinationRule's traffic policy becomes the
// cluster's load balancer, circuit breakers and outlier detection.

import (
	"fmt"
	"net"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/minimesh/minimesh/mesh"
)

// clusterRef names one outbound cluster by its parts.
type clusterRef struct {
	host   string
	port   uint32
	subset string
}

func (c clusterRef) name() string { return OutboundClusterName(c.port, c.subset, c.host) }

// clusterRefs lists the outbound clusters of services: each service port,
// alone and with each subset its DestinationRule defines.
func (ix *index) clusterRefs(services []*mesh.Service) []clusterRef {
	var refs []clusterRef
	for _, s := range services {
		for _, p := range s.Ports {
			refs = append(refs, clusterRef{host: s.Hostname, port: p.Number})
			if dr := ix.rules[s.Hostname]; dr != nil {
				for _, ss := range dr.Subsets {
					refs = append(refs, clusterRef{host: s.Hostname, port: p.Number, subset: ss.Name})
				}
			}
		}
	}
	return refs
}

// outboundCluster builds one outbound cluster and, for EDS clusters, its
// endpoints. A cluster of a DNS service carries its endpoints inline.
// identity says whether the client has a workload identity (a
// certificate) to do mesh mTLS with; without one, no cluster uses it.
func (ix *index) outboundCluster(ref clusterRef, flavor Flavor, identity bool) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	svc := ix.services[ref.host]
	if svc == nil {
		return nil, nil, fmt.Errorf("cluster %s: unknown service %s", ref.name(), ref.host)
	}
	port := svc.Port(ref.port)
	if port == nil {
		return nil, nil, fmt.Errorf("cluster %s: service %s has no port %d", ref.name(), ref.host, ref.port)
	}
	policy, selector, err := ix.policyFor(ref)
	if err != nil {
		return nil, nil, err
	}
	cla := ClusterLoadAssignment(ref.name(), ix.lbEndpoints(svc, *port, selector, flavor)...)
	// (applyClusterTLS below decides whether the mTLS marks on endpoints are used.)

	var c *clusterv3.Cluster
	switch {
	case svc.Resolution == mesh.ResolutionDNS && flavor == FlavorGRPC:
		// gRPC resolves one DNS name itself (LOGICAL_DNS); it has no STRICT_DNS.
		cla.Endpoints = firstEndpointOnly(cla.Endpoints)
		c, cla = StaticCluster(ref.name(), clusterv3.Cluster_LOGICAL_DNS, cla), nil
	case svc.Resolution == mesh.ResolutionDNS:
		c, cla = StaticCluster(ref.name(), clusterv3.Cluster_STRICT_DNS, cla), nil
	default:
		c = EDSCluster(ref.name())
	}
	if err := applyTrafficPolicy(c, policy, port.Protocol.IsHTTP2()); err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", ref.name(), err)
	}
	if err := ix.applyClusterTLS(c, ref, svc, *port, policy, selector, flavor, identity); err != nil {
		return nil, nil, fmt.Errorf("cluster %s: tls: %w", ref.name(), err)
	}
	if c.TransportSocketMatches == nil {
		unmarkMTLS(cla)
		unmarkMTLS(c.LoadAssignment)
	}
	return c, cla, nil
}

// policyFor returns the traffic policy and endpoint label selector of a
// cluster: the subset's when the cluster is a subset, else the rule's.
func (ix *index) policyFor(ref clusterRef) (*mesh.TrafficPolicy, map[string]string, error) {
	if ref.subset == "" {
		if dr := ix.rules[ref.host]; dr != nil {
			return dr.TrafficPolicy, nil, nil
		}
		return nil, nil, nil
	}
	ss, ok := ix.subset(ref.host, ref.subset)
	if !ok {
		return nil, nil, fmt.Errorf("cluster %s: no DestinationRule defines subset %q of %s", ref.name(), ref.subset, ref.host)
	}
	return ss.TrafficPolicy, ss.Labels, nil
}

// lbEndpoints lists the endpoints of svc whose labels include selector, on
// the port that receives traffic for port p.
func (ix *index) lbEndpoints(svc *mesh.Service, p mesh.Port, selector map[string]string, flavor Flavor) []*endpointv3.LbEndpoint {
	var out []*endpointv3.LbEndpoint
	for _, ep := range svc.Endpoints {
		if !labelsMatch(selector, ep.Labels) {
			continue
		}
		lb := LbEndpoint(ep.Address, ep.PortFor(p), ep.Weight)
		if flavor == FlavorEnvoy && ix.endpointMTLS(svc, ep, p) {
			markMTLS(lb)
		}
		out = append(out, lb)
	}
	return out
}

// labelsMatch reports whether every selector label is present in labels.
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// firstEndpointOnly keeps the first endpoint: a LOGICAL_DNS cluster has one.
func firstEndpointOnly(locs []*endpointv3.LocalityLbEndpoints) []*endpointv3.LocalityLbEndpoints {
	if len(locs) == 0 || len(locs[0].LbEndpoints) <= 1 {
		return locs
	}
	locs[0].LbEndpoints = locs[0].LbEndpoints[:1]
	return locs
}

// applyTrafficPolicy turns a DestinationRule traffic policy into cluster
// settings: load balancer, circuit breakers, timeouts, outlier detection.
func applyTrafficPolicy(c *clusterv3.Cluster, tp *mesh.TrafficPolicy, http2 bool) error {
	var pool *mesh.ConnectionPool
	if tp != nil {
		pool = tp.ConnectionPool
		setLoadBalancer(c, tp.LoadBalancer)
		c.CircuitBreakers = CircuitBreakers(pool)
		c.OutlierDetection = OutlierDetection(tp.OutlierDetection)
		if pool != nil && pool.ConnectTimeout > 0 {
			c.ConnectTimeout = durationpb.New(pool.ConnectTimeout)
		}
	}
	return useHTTP2Upstream(c, http2, pool)
}

// setLoadBalancer maps Istio's simple load balancers to Envoy's lb_policy.
func setLoadBalancer(c *clusterv3.Cluster, lb mesh.LoadBalancer) {
	switch lb {
	case mesh.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case mesh.LBRandom:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	default:
		// ROUND_ROBIN, and PASSTHROUGH, which needs transparent capture to
		// know the original destination: explicit-mode sidecars and gRPC
		// clients have none, so they balance round robin.
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	}
}

// CircuitBreakers maps an Istio connection pool to Envoy's default-priority
// thresholds. Unset limits keep Envoy's defaults.
func CircuitBreakers(pool *mesh.ConnectionPool) *clusterv3.CircuitBreakers {
	if pool == nil {
		return nil
	}
	t := &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
	set := false
	if pool.MaxConnections > 0 {
		t.MaxConnections, set = wrapperspb.UInt32(pool.MaxConnections), true
	}
	if pool.HTTP1MaxPendingRequests > 0 {
		t.MaxPendingRequests, set = wrapperspb.UInt32(pool.HTTP1MaxPendingRequests), true
	}
	if pool.HTTP2MaxRequests > 0 {
		t.MaxRequests, set = wrapperspb.UInt32(pool.HTTP2MaxRequests), true
	}
	if pool.MaxRetries > 0 {
		t.MaxRetries, set = wrapperspb.UInt32(pool.MaxRetries), true
	}
	if !set {
		return nil
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

// OutlierDetection maps Istio's outlier detection to Envoy's. Istio's
// consecutive errors count gateway errors and 5xx separately; Envoy enforces
// each only when its enforcing percentage is set, which Istio sets to 100.
func OutlierDetection(od *mesh.OutlierDetection) *clusterv3.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &clusterv3.OutlierDetection{}
	if od.Consecutive5xxErrors > 0 {
		out.Consecutive_5Xx = wrapperspb.UInt32(od.Consecutive5xxErrors)
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(100)
	} // else Envoy's default: eject after 5 consecutive 5xx
	if od.ConsecutiveGatewayErrors > 0 {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(od.ConsecutiveGatewayErrors)
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
	}
	if od.Interval > 0 {
		out.Interval = durationpb.New(od.Interval)
	}
	if od.BaseEjectionTime > 0 {
		out.BaseEjectionTime = durationpb.New(od.BaseEjectionTime)
	}
	if od.MaxEjectionPercent > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(od.MaxEjectionPercent)
	}
	return out
}

// isIP reports whether s is a literal IP address.
func isIP(s string) bool { return net.ParseIP(s) != nil }
