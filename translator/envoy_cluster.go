package translator

// Small constructors for clusters and endpoints, named after the Envoy type
// they build.

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/minimesh/minimesh/mesh"
)

// defaultConnectTimeout is how long Envoy waits for an upstream TCP
// connection when no DestinationRule says otherwise (Istio's default).
const defaultConnectTimeout = 10 * time.Second

// adsConfigSource tells the proxy to fetch a resource over the ADS stream it
// already has open.
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// EDSCluster is a cluster whose endpoints arrive over EDS, under the
// cluster's own name.
func EDSCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig:   adsConfigSource(),
			ServiceName: name,
		},
		ConnectTimeout: durationpb.New(defaultConnectTimeout),
	}
}

// StaticCluster is a cluster with its endpoints inline.
func StaticCluster(name string, kind clusterv3.Cluster_DiscoveryType, cla *endpointv3.ClusterLoadAssignment) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		LoadAssignment:       cla,
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
	}
}

// LbEndpoint is one address:port an upstream connection may go to.
func LbEndpoint(address string, port, weight uint32) *endpointv3.LbEndpoint {
	ep := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: SocketAddress(address, port),
		}},
		HealthStatus: corev3.HealthStatus_HEALTHY,
	}
	if weight > 0 {
		ep.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return ep
}

// ClusterLoadAssignment groups endpoints into one locality. Proxyless gRPC
// requires a locality weight of at least 1, so it is always set.
func ClusterLoadAssignment(cluster string, endpoints ...*endpointv3.LbEndpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	if len(endpoints) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{
			Locality:            &corev3.Locality{},
			LbEndpoints:         endpoints,
			LoadBalancingWeight: wrapperspb.UInt32(1),
		}}
	}
	return cla
}

// SocketAddress is a TCP address.
func SocketAddress(address string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// useHTTP2Upstream makes Envoy speak HTTP/2 to the cluster's endpoints (gRPC
// and HTTP2 ports), and sets per-connection HTTP limits.
func useHTTP2Upstream(c *clusterv3.Cluster, http2 bool, pool *mesh.ConnectionPool) error {
	opts := &upstreamhttpv3.HttpProtocolOptions{}
	if pool != nil && (pool.MaxRequestsPerConnection > 0 || pool.IdleTimeout > 0) {
		opts.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{}
		if pool.MaxRequestsPerConnection > 0 {
			opts.CommonHttpProtocolOptions.MaxRequestsPerConnection = wrapperspb.UInt32(pool.MaxRequestsPerConnection)
		}
		if pool.IdleTimeout > 0 {
			opts.CommonHttpProtocolOptions.IdleTimeout = durationpb.New(pool.IdleTimeout)
		}
	}
	if !http2 && opts.CommonHttpProtocolOptions == nil {
		return nil
	}
	if http2 {
		opts.UpstreamProtocolOptions = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		}
	} else {
		opts.UpstreamProtocolOptions = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
					HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
				},
			},
		}
	}
	a, err := anyOf(opts)
	if err != nil {
		return err
	}
	c.TypedExtensionProtocolOptions = map[string]*anyMsg{httpProtocolOptionsKey: a}
	return nil
}

// httpProtocolOptionsKey is the extension name under which Envoy looks for a
// cluster's upstream HTTP options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// OriginalDstCluster connects to the address the downstream connection was
// originally sent to (before iptables redirected it): the cluster has no
// endpoints of its own, and its load balancer must be CLUSTER_PROVIDED.
func OriginalDstCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(defaultConnectTimeout),
	}
}
