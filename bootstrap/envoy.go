package bootstrap

import (
	"cmp"
	"fmt"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	// DefaultAdminAddress is where Envoy's admin interface listens unless
	// EnvoyOptions.AdminAddress says otherwise: localhost only, as Istio does.
	DefaultAdminAddress = "127.0.0.1:15000"

	// XDSClusterName is the static cluster through which Envoy reaches
	// minimesh. It is Istio's name for the same cluster; no cluster that
	// minimesh sends over xDS may use it.
	XDSClusterName = "xds-grpc"

	// NamespaceMetadataKey is the node metadata key that carries the
	// proxy's namespace, under Istio's name for it.
	NamespaceMetadataKey = "NAMESPACE"

	// xdsConnectTimeout bounds each attempt to connect to minimesh.
	xdsConnectTimeout = time.Second

	// httpProtocolOptionsKey is the extension name under which a cluster's
	// typed_extension_protocol_options holds its HTTP protocol options.
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// EnvoyOptions describes one Envoy sidecar's bootstrap.
type EnvoyOptions struct {
	// NodeID is "<workload>.<namespace>", the name of the Pod or
	// WorkloadEntry this Envoy serves. Required.
	NodeID string
	// XDSAddress is the "host:port" of minimesh's xDS server; host is an IP
	// address or a DNS name.
	XDSAddress string
	// Delta selects incremental xDS (DELTA_GRPC); false selects state of the
	// world (GRPC).
	Delta bool
	// AdminAddress is the "ip:port" of Envoy's admin interface;
	// DefaultAdminAddress when empty.
	AdminAddress string
	// XDSTLS makes Envoy reach minimesh over TLS, presenting the workload
	// certificate in CertDir and checking minimesh's certificate against
	// the roots there and against the host of XDSAddress. False means
	// plaintext xDS, in which nothing is authenticated.
	XDSTLS bool
	// CertDir is the directory, as Envoy sees it, where
	// `minimesh certs issue --out` wrote the workload's key, chain and
	// roots. Required with XDSTLS and used only then: Envoy gets the
	// certificates it uses for mTLS between workloads over SDS.
	CertDir string
}

// Envoy returns the bootstrap for one Envoy sidecar: who it is, where its
// admin interface listens, and how it fetches everything else from minimesh
// over ADS. The result has passed ValidateAll.
func Envoy(o EnvoyOptions) (*bootstrapv3.Bootstrap, error) {
	node, err := parseNodeID(o.NodeID)
	if err != nil {
		return nil, err
	}
	xds, err := parseAddress("xDS address", o.XDSAddress)
	if err != nil {
		return nil, err
	}
	admin, err := parseIPAddress("admin address", cmp.Or(o.AdminAddress, DefaultAdminAddress))
	if err != nil {
		return nil, err
	}
	if err := o.checkTLS(); err != nil {
		return nil, err
	}
	cluster, err := xdsCluster(xds)
	if err != nil {
		return nil, err
	}
	if o.XDSTLS {
		if cluster.TransportSocket, err = xdsTransportSocket(xds, o.CertDir); err != nil {
			return nil, err
		}
	}
	b := &bootstrapv3.Bootstrap{
		Node:             envoyNode(node),
		Admin:            adminInterface(admin),
		DynamicResources: dynamicResources(o.Delta),
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{cluster},
		},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap for node %s: %w", o.NodeID, err)
	}
	return b, nil
}

// checkTLS refuses TLS settings that cannot mean anything.
func (o EnvoyOptions) checkTLS() error {
	switch {
	case o.XDSTLS && o.CertDir == "":
		return fmt.Errorf("envoy bootstrap for node %s: xDS over TLS needs the directory of the workload's certificate files", o.NodeID)
	case !o.XDSTLS && o.CertDir != "":
		return fmt.Errorf("envoy bootstrap for node %s: a certificate directory is used only for xDS over TLS "+
			"(Envoy gets the certificates it uses between workloads over SDS)", o.NodeID)
	}
	return checkCertDir(o.CertDir)
}

// envoyNode identifies the proxy to minimesh. Envoy fills in user_agent
// itself; minimesh reads labels and addresses from its registry, never from
// what the node claims, so the namespace is the only metadata.
func envoyNode(n nodeID) *corev3.Node {
	return &corev3.Node{
		Id:      n.ID,
		Cluster: n.Workload,
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			NamespaceMetadataKey: structpb.NewStringValue(n.Namespace),
		}},
	}
}

// adminInterface is Envoy's admin listener.
func adminInterface(a hostPort) *bootstrapv3.Admin {
	return &bootstrapv3.Admin{Address: socketAddress(a)}
}

// dynamicResources fetches listeners and clusters (and through them routes,
// endpoints and secrets) over one ADS stream to minimesh.
func dynamicResources(delta bool) *bootstrapv3.Bootstrap_DynamicResources {
	return &bootstrapv3.Bootstrap_DynamicResources{
		AdsConfig: adsAPIConfigSource(delta),
		CdsConfig: adsConfigSource(),
		LdsConfig: adsConfigSource(),
	}
}

// adsAPIConfigSource is the ADS stream itself: gRPC to the xDS cluster,
// incremental (delta) or state of the world.
func adsAPIConfigSource(delta bool) *corev3.ApiConfigSource {
	apiType := corev3.ApiConfigSource_GRPC
	if delta {
		apiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	return &corev3.ApiConfigSource{
		ApiType:             apiType,
		TransportApiVersion: corev3.ApiVersion_V3,
		GrpcServices: []*corev3.GrpcService{{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName},
			},
		}},
		SetNodeOnFirstMessageOnly: true,
	}
}

// adsConfigSource says "fetch this resource type over the ADS stream".
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// xdsCluster is the static cluster that reaches minimesh's xDS server over
// HTTP/2 (gRPC). An IP address is used as is (STATIC); a DNS name is
// re-resolved while Envoy runs (STRICT_DNS).
func xdsCluster(xds hostPort) (*clusterv3.Cluster, error) {
	discovery := clusterv3.Cluster_STRICT_DNS
	if xds.IsIP() {
		discovery = clusterv3.Cluster_STATIC
	}
	http2, err := http2ProtocolOptions()
	if err != nil {
		return nil, err
	}
	return &clusterv3.Cluster{
		Name:                 XDSClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(xdsConnectTimeout),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			httpProtocolOptionsKey: http2,
		},
		LoadAssignment: loadAssignment(XDSClusterName, xds),
	}, nil
}

// http2ProtocolOptions tells a cluster to speak HTTP/2 to its upstream. The
// message is validated here because ValidateAll does not look inside an Any.
func http2ProtocolOptions() (*anypb.Any, error) {
	opts := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	}
	if err := opts.ValidateAll(); err != nil {
		return nil, fmt.Errorf("http protocol options: %w", err)
	}
	return anypb.New(opts)
}

// loadAssignment is a cluster's single endpoint at a.
func loadAssignment(cluster string, a hostPort) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
					Endpoint: &endpointv3.Endpoint{Address: socketAddress(a)},
				},
			}},
		}},
	}
}

// socketAddress is a TCP address in Envoy's form.
func socketAddress(a hostPort) *corev3.Address {
	return &corev3.Address{
		Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{
				Protocol:      corev3.SocketAddress_TCP,
				Address:       a.Host,
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: a.Port},
			},
		},
	}
}
