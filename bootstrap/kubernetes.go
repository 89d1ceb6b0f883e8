package bootstrap

import (
	"cmp"
	"fmt"
	"net/url"
	"path"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Defaults of a Kubernetes sidecar's bootstrap. The paths are where the
// injector mounts the projected token and the mesh's root certificate.
const (
	// DefaultKubernetesXDSAddress is minimesh's xDS Service in the
	// namespace that examples/kubernetes installs it into.
	DefaultKubernetesXDSAddress = "minimesh.minimesh-system.svc:15010"
	// DefaultTokenExchangeURL is minimesh's RFC 8693 token exchange (STS)
	// endpoint.
	DefaultTokenExchangeURL = "https://minimesh.minimesh-system.svc:15014/token"
	// DefaultTokenPath is the projected service-account token (audience
	// "minimesh") that kubelet keeps fresh.
	DefaultTokenPath = "/var/run/secrets/tokens/minimesh-token"
	// DefaultRootCertPath is the mesh's root certificate, from the
	// minimesh-ca-root-cert ConfigMap.
	DefaultRootCertPath = "/etc/minimesh/ca/root-cert.pem"

	// HealthPort is where a Kubernetes sidecar answers kubelet's probes.
	HealthPort = 15021
	// ReadyPath is the probe path on HealthPort: 200 once Envoy has
	// received its first configuration (or given up waiting for it).
	ReadyPath = "/healthz/ready"

	// PodNamespaceRef is what a Kubernetes sidecar's bootstrap holds in
	// place of the namespace. The bootstrap is passed in container args,
	// and kubelet replaces the reference with the POD_NAMESPACE variable,
	// which the container takes from the downward API. One bootstrap then
	// serves every replica of a pod template, whatever namespace it is
	// applied to.
	PodNamespaceRef = "$(" + PodNamespaceEnv + ")"
	// PodNamespaceEnv is the container environment variable that
	// PodNamespaceRef refers to.
	PodNamespaceEnv = "POD_NAMESPACE"

	// InterceptionModeMetadataKey is the node metadata key (Istio's name)
	// that tells minimesh how traffic reaches the proxy. "REDIRECT" means
	// iptables sends every TCP connection to the proxy's capture ports, so
	// minimesh serves it transparent-mode listeners.
	InterceptionModeMetadataKey = "INTERCEPTION_MODE"
	// InterceptionRedirect is the interception mode of injected sidecars.
	InterceptionRedirect = "REDIRECT"

	// HealthListenerName and AdminClusterName are the static resources of
	// the health endpoint. No resource minimesh sends may use them.
	HealthListenerName = "minimesh-health"
	AdminClusterName   = "minimesh-envoy-admin"

	// jwtTokenType is RFC 8693's token type of the subject token: a JWT.
	jwtTokenType = "urn:ietf:params:oauth:token-type:jwt"
	// envoyReadyPath is the admin endpoint that answers 200 only once the
	// server is live, i.e. has finished initializing its configuration.
	envoyReadyPath = "/ready"
)

// KubernetesOptions describes the bootstrap of sidecars that `minimesh
// inject` and the admission webhook add to pods. The zero value gives the
// defaults above.
type KubernetesOptions struct {
	// XDSAddress is the "host:port" of minimesh's xDS server, a DNS name
	// the pod can resolve (the name minimesh's serving certificate
	// carries). DefaultKubernetesXDSAddress when empty.
	XDSAddress string
	// TokenExchangeURL is minimesh's token exchange endpoint (https).
	// DefaultTokenExchangeURL when empty.
	TokenExchangeURL string
	// TokenPath is the projected service-account token, as the proxy sees
	// it. DefaultTokenPath when empty.
	TokenPath string
	// RootCertPath is the mesh's root certificate, as the proxy sees it.
	// DefaultRootCertPath when empty.
	RootCertPath string
	// SotW selects state-of-the-world xDS instead of delta xDS.
	SotW bool
}

// withDefaults fills in the empty fields.
func (o KubernetesOptions) withDefaults() KubernetesOptions {
	o.XDSAddress = cmp.Or(o.XDSAddress, DefaultKubernetesXDSAddress)
	o.TokenExchangeURL = cmp.Or(o.TokenExchangeURL, DefaultTokenExchangeURL)
	o.TokenPath = cmp.Or(o.TokenPath, DefaultTokenPath)
	o.RootCertPath = cmp.Or(o.RootCertPath, DefaultRootCertPath)
	return o
}

// check refuses options Envoy could not use.
func (o KubernetesOptions) check() error {
	xds, err := parseAddress("xDS address", o.XDSAddress)
	if err != nil {
		return err
	}
	if xds.IsIP() {
		// gRPC checks the server certificate against the target's host,
		// and minimesh's certificate names its Service, not an address.
		return fmt.Errorf("xDS address %q: want the DNS name of minimesh's Service, which its certificate names", o.XDSAddress)
	}
	u, err := url.Parse(o.TokenExchangeURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("token exchange URL %q: want https://host:port/path (the token must not travel in the clear)", o.TokenExchangeURL)
	}
	for what, p := range map[string]string{"token path": o.TokenPath, "root certificate path": o.RootCertPath} {
		if !path.IsAbs(p) {
			return fmt.Errorf("%s %q: want an absolute path inside the proxy container", what, p)
		}
	}
	return nil
}

// KubernetesEnvoy returns the bootstrap of an injected Envoy sidecar. Unlike
// Envoy's, it names no node: the container's command line gives the node
// ID ("<pod>.<namespace>") and cluster, and its node metadata holds
// PodNamespaceRef, for kubelet to expand.
//
// Envoy reaches minimesh with its Google gRPC client rather than through a
// static cluster, because that client can authenticate each call: it
// exchanges the projected service-account token at minimesh's token
// exchange endpoint (RFC 8693 STS, re-reading the file that kubelet
// rotates) and sends the result as "authorization: Bearer" on the xDS
// stream. It trusts minimesh's certificate only if it chains to the mesh's
// root. The workload's own certificate arrives over ADS as SDS secrets.
//
// A static listener on HealthPort answers ReadyPath with Envoy's readiness,
// so that kubelet can probe it without minimesh being reachable. The
// result has passed ValidateAll, including the messages packed in Anys.
func KubernetesEnvoy(o KubernetesOptions) (*bootstrapv3.Bootstrap, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("kubernetes envoy bootstrap: %w", err)
	}
	admin, err := parseIPAddress("admin address", DefaultAdminAddress)
	if err != nil {
		return nil, err
	}
	health, err := healthListener()
	if err != nil {
		return nil, fmt.Errorf("kubernetes envoy bootstrap: %w", err)
	}
	b := &bootstrapv3.Bootstrap{
		Node:  kubernetesNode(),
		Admin: adminInterface(admin),
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: googleGRPCAPIConfigSource(o),
			CdsConfig: adsConfigSource(),
			LdsConfig: adsConfigSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{health},
			Clusters:  []*clusterv3.Cluster{adminCluster(admin)},
		},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("kubernetes envoy bootstrap: %w", err)
	}
	return b, nil
}

// kubernetesNode is the node metadata of an injected sidecar: its namespace
// (expanded by kubelet) and its interception mode.
func kubernetesNode() *corev3.Node {
	return &corev3.Node{
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			NamespaceMetadataKey:        structpb.NewStringValue(PodNamespaceRef),
			InterceptionModeMetadataKey: structpb.NewStringValue(InterceptionRedirect),
		}},
	}
}

// googleGRPCAPIConfigSource is the ADS stream to minimesh over TLS, each
// call carrying a token obtained by exchanging the pod's projected
// service-account token.
func googleGRPCAPIConfigSource(o KubernetesOptions) *corev3.ApiConfigSource {
	apiType := corev3.ApiConfigSource_DELTA_GRPC
	if o.SotW {
		apiType = corev3.ApiConfigSource_GRPC
	}
	return &corev3.ApiConfigSource{
		ApiType:             apiType,
		TransportApiVersion: corev3.ApiVersion_V3,
		GrpcServices: []*corev3.GrpcService{{
			TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{
				TargetUri:  o.XDSAddress,
				StatPrefix: XDSClusterName,
				ChannelCredentials: &corev3.GrpcService_GoogleGrpc_ChannelCredentials{
					CredentialSpecifier: &corev3.GrpcService_GoogleGrpc_ChannelCredentials_SslCredentials{
						SslCredentials: &corev3.GrpcService_GoogleGrpc_SslCredentials{RootCerts: fileSource(o.RootCertPath)},
					},
				},
				CallCredentials: []*corev3.GrpcService_GoogleGrpc_CallCredentials{tokenExchangeCredentials(o)},
			}},
		}},
		SetNodeOnFirstMessageOnly: true,
	}
}

// tokenExchangeCredentials makes gRPC trade the projected token for an
// access token at minimesh's STS endpoint before each call that needs one.
// gRPC verifies that endpoint's certificate against the roots named by the
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH environment variable, which the injector
// sets to the same root certificate.
func tokenExchangeCredentials(o KubernetesOptions) *corev3.GrpcService_GoogleGrpc_CallCredentials {
	return &corev3.GrpcService_GoogleGrpc_CallCredentials{
		CredentialSpecifier: &corev3.GrpcService_GoogleGrpc_CallCredentials_StsService_{
			StsService: &corev3.GrpcService_GoogleGrpc_CallCredentials_StsService{
				TokenExchangeServiceUri: o.TokenExchangeURL,
				SubjectTokenPath:        o.TokenPath,
				SubjectTokenType:        jwtTokenType,
			},
		},
	}
}

// healthListener answers kubelet's probes on HealthPort. ReadyPath is
// forwarded to the admin interface's /ready, which says 200 only once Envoy
// has initialized (received its first listeners and clusters, or waited
// out the initial fetch timeout); the admin interface itself stays on
// localhost. Every other path gets a 404.
func healthListener() (*listenerv3.Listener, error) {
	router, err := packValidated(&routerv3.Router{})
	if err != nil {
		return nil, fmt.Errorf("health listener: router: %w", err)
	}
	hcm, err := packValidated(&hcmv3.HttpConnectionManager{
		StatPrefix: "minimesh_health",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: HealthListenerName,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    HealthListenerName,
				Domains: []string{"*"},
				Routes:  []*routev3.Route{readyRoute()},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("health listener: http connection manager: %w", err)
	}
	return &listenerv3.Listener{
		Name:    HealthListenerName,
		Address: socketAddress(hostPort{Host: "0.0.0.0", Port: HealthPort}),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
			}},
		}},
	}, nil
}

// readyRoute sends ReadyPath to the admin interface's readiness endpoint.
func readyRoute() *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: ReadyPath}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: AdminClusterName},
			PrefixRewrite:    envoyReadyPath,
		}},
	}
}

// adminCluster reaches Envoy's own admin interface on localhost.
func adminCluster(admin hostPort) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 AdminClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(xdsConnectTimeout),
		LoadAssignment:       loadAssignment(AdminClusterName, admin),
	}
}

// validatable is an Envoy API message with its protoc-gen-validate rules.
type validatable interface {
	proto.Message
	ValidateAll() error
}

// packValidated validates m and packs it in an Any: ValidateAll does not
// look inside Anys.
func packValidated(m validatable) (*anypb.Any, error) {
	if err := m.ValidateAll(); err != nil {
		return nil, err
	}
	return anypb.New(m)
}

// KubernetesEnvoyYAML returns the bootstrap of an injected sidecar as YAML,
// for Envoy's --config-yaml flag. Like EnvoyYAML, the same options always
// give the same bytes.
func KubernetesEnvoyYAML(o KubernetesOptions) ([]byte, error) {
	b, err := KubernetesEnvoy(o)
	if err != nil {
		return nil, err
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("kubernetes envoy bootstrap: %w", err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("kubernetes envoy bootstrap: %w", err)
	}
	return append([]byte(kubernetesHeader), y...), nil
}

// kubernetesHeader is the comment at the top of an injected sidecar's
// bootstrap. It must not contain a "$(" reference: kubelet would expand it.
const kubernetesHeader = "# Envoy bootstrap of a sidecar injected by minimesh. The node ID and cluster\n" +
	"# come from the command line; kubelet fills in the namespace below.\n"
