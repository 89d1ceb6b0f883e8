// Package mesh is minimesh's model of the mesh: services and their ports,
// workloads, routing rules, subsets and traffic policies, already validated
// and with every host name resolved to a fully qualified name.
//
// It owns the conversion from Istio's API objects (VirtualService,
// DestinationRule, ServiceEntry, WorkloadEntry, PeerAuthentication) into
// this model, with the
// validation and the error messages that name the file, the object and the
// field. Both watchers (files and Kubernetes) feed objects through here.
//
// mesh imports neither Envoy nor Kubernetes client code: the translator reads
// a Snapshot and nothing else.
package mesh

import (
	"time"
)

// Snapshot is a complete, immutable view of the mesh at one moment. Every
// slice is sorted (services by hostname, rules by namespace/name) so that the
// same input always produces the same output, byte for byte.
type Snapshot struct {
	// DomainSuffix is the cluster domain, "cluster.local" by default.
	DomainSuffix string
	// Services, sorted by Hostname. Endpoints are resolved.
	Services []*Service
	// Workloads, sorted by Namespace then Name.
	Workloads []*Workload
	// VirtualServices, sorted by Namespace then Name; only valid ones.
	VirtualServices []*VirtualService
	// DestinationRules, sorted by Namespace then Name; only valid ones.
	DestinationRules []*DestinationRule
	// PeerAuthentications, sorted by Namespace then Name; only valid ones,
	// as written. Use MTLSMode to find the mode of a workload port: it
	// applies Istio's precedence, which also means ignoring the policies
	// with a selector in the root namespace.
	PeerAuthentications []*PeerAuthentication
	// Sidecars, sorted by Namespace then Name; only valid ones. Use
	// SidecarFor to find the one that scopes a proxy.
	Sidecars []*Sidecar
	// RootNamespace holds the mesh-wide policies: DefaultRootNamespace
	// unless Options.RootNamespace says otherwise.
	RootNamespace string
}

// Ref identifies the object a piece of the model came from, for errors and
// for people reading config dumps.
type Ref struct {
	Kind      string // "VirtualService", ...
	Namespace string
	Name      string
	// Source is where the object was read: a file path (with the document
	// index for multi-document files, "canary.yaml#2") or "kubernetes".
	Source string
}

// String renders the reference as "VirtualService default/my-app-vs (canary.yaml#1)".
func (r Ref) String() string {
	s := r.Kind + " " + r.Namespace + "/" + r.Name
	if r.Source != "" {
		s += " (" + r.Source + ")"
	}
	return s
}

// Protocol is the application protocol of a service port, as Istio names it.
type Protocol string

// The protocols minimesh distinguishes. Anything else is treated as TCP.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolTCP   Protocol = "TCP"
)

// IsHTTP reports whether traffic on the port is HTTP of some version, which
// is what minimesh can route with VirtualService http rules.
func (p Protocol) IsHTTP() bool {
	return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC
}

// IsHTTP2 reports whether connections to the port must speak HTTP/2.
func (p Protocol) IsHTTP2() bool { return p == ProtocolHTTP2 || p == ProtocolGRPC }

// Resolution says how the addresses of a service's endpoints are found.
type Resolution string

const (
	// ResolutionStatic: endpoints are IP addresses, served over EDS.
	ResolutionStatic Resolution = "STATIC"
	// ResolutionDNS: endpoints are DNS names that the proxy resolves itself.
	ResolutionDNS Resolution = "DNS"
)

// Service is something clients call by name: one ServiceEntry host.
type Service struct {
	// Hostname is the fully qualified name, "my-app.default.svc.cluster.local".
	Hostname string
	// Namespace is the namespace of the ServiceEntry that declared it.
	Namespace  string
	Ports      []Port // sorted by Number
	Resolution Resolution
	// External is true for MESH_EXTERNAL services (no sidecar on the other side).
	External  bool
	Endpoints []*Endpoint // sorted by Address then port
	// Addresses are the virtual IPs (or CIDR ranges) clients connect to for
	// this service, as written in the ServiceEntry's spec.addresses; in
	// Kubernetes, the Service's ClusterIP. Sidecars in transparent capture
	// mode recognise the service's traffic by them: by the original
	// destination address of TCP connections, and as Host values of HTTP
	// requests. Explicit mode has no use for them. Empty when none is known.
	Addresses []string
	Source    Ref
}

// Port returns the service port with the given number, or nil.
func (s *Service) Port(number uint32) *Port {
	for i := range s.Ports {
		if s.Ports[i].Number == number {
			return &s.Ports[i]
		}
	}
	return nil
}

// Port is one port of a service.
type Port struct {
	Number   uint32
	Name     string
	Protocol Protocol
	// TargetPort is the port on the endpoints; 0 means the same as Number.
	TargetPort uint32
}

// Endpoint is one address behind a service port set.
type Endpoint struct {
	// Address is an IP (STATIC) or a DNS name (DNS).
	Address string
	// Ports maps a service port name to the port on this endpoint.
	// A port absent from the map uses the service port's TargetPort (or Number).
	Ports  map[string]uint32
	Labels map[string]string
	// Workload is the workload behind the endpoint, when there is one
	// (a WorkloadEntry selected by the ServiceEntry); nil for inline endpoints.
	Workload *Workload
	// Weight is the load balancing weight; 0 means 1.
	Weight uint32
	// ServiceAccount is the identity of the endpoint: the workload's service
	// account, or the serviceAccount written on an inline endpoint ("" when
	// none is known).
	ServiceAccount string
}

// PortFor returns the port on this endpoint that receives traffic for the
// given service port.
func (e *Endpoint) PortFor(p Port) uint32 {
	if n, ok := e.Ports[p.Name]; ok && n != 0 {
		return n
	}
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Number
}

// Workload is one instance of an application: a WorkloadEntry (or, in
// Kubernetes, a Pod). A proxy whose node ID is "<name>.<namespace>" is the
// sidecar (or the proxyless gRPC process) of this workload.
type Workload struct {
	Name           string
	Namespace      string
	Address        string
	Labels         map[string]string
	ServiceAccount string
	// Ports maps a port name to the port where the workload receives it.
	Ports  map[string]uint32
	Source Ref
}

// ID is the node ID a proxy of this workload uses: "<name>.<namespace>".
func (w *Workload) ID() string { return w.Name + "." + w.Namespace }

// VirtualService holds the routing rules for a set of hosts.
type VirtualService struct {
	Name      string
	Namespace string
	// Hosts as resolved: short names made fully qualified in the object's
	// namespace ("my-app" -> "my-app.default.svc.cluster.local").
	Hosts  []string
	HTTP   []HTTPRoute // in order: the first match wins
	Source Ref
}

// HTTPRoute is one http rule of a VirtualService.
type HTTPRoute struct {
	Name string
	// Match lists alternatives (OR); an empty list matches every request.
	Match []HTTPMatch
	// Route lists the weighted destinations; weights sum to 100 (a single
	// destination without weight gets 100).
	Route   []RouteDestination
	Timeout time.Duration // 0: none set
	Retries *Retries      // nil: none set
}

// HTTPMatch is one match block; all its conditions must hold (AND).
type HTTPMatch struct {
	Name    string
	URI     *StringMatch
	Method  *StringMatch
	Headers []HeaderMatch // sorted by Name
}

// HeaderMatch matches one request header.
type HeaderMatch struct {
	Name  string // lower case
	Value StringMatch
}

// MatchKind is how a string is compared.
type MatchKind string

const (
	MatchExact  MatchKind = "exact"
	MatchPrefix MatchKind = "prefix"
	MatchRegex  MatchKind = "regex"
)

// StringMatch compares a string with Value.
type StringMatch struct {
	Kind  MatchKind
	Value string
}

// RouteDestination is a weighted destination of an HTTP rule.
type RouteDestination struct {
	// Host is the fully qualified service name.
	Host   string
	Subset string // "" for all endpoints of the service
	// Port is the service port; 0 when the service has a single port and the
	// rule does not name one (the translator then uses the port being routed).
	Port   uint32
	Weight uint32
}

// Retries is a VirtualService retry policy.
type Retries struct {
	Attempts      uint32
	PerTryTimeout time.Duration // 0: not set
	RetryOn       string        // Envoy/gRPC retry conditions, comma separated; "" for the default
}

// DestinationRule holds the policies that apply to traffic going to a host,
// and the subsets (named groups of endpoints) of that host.
type DestinationRule struct {
	Name      string
	Namespace string
	// Host is the fully qualified host the rule applies to.
	Host          string
	TrafficPolicy *TrafficPolicy // nil: defaults
	Subsets       []Subset       // in the order written
	Source        Ref
}

// Subset is a named group of a service's endpoints, selected by labels.
type Subset struct {
	Name   string
	Labels map[string]string
	// TrafficPolicy, when set, overrides the rule's policy field by field
	// (already merged by the converter: use it as is). It is the rule's
	// policy with the subset's own loadBalancer, connectionPool,
	// outlierDetection and tls put over it, so it is nil only when neither
	// the rule nor the subset sets a policy.
	TrafficPolicy *TrafficPolicy
}

// LoadBalancer is a simple load balancing algorithm.
type LoadBalancer string

const (
	LBDefault      LoadBalancer = ""
	LBRoundRobin   LoadBalancer = "ROUND_ROBIN"
	LBLeastRequest LoadBalancer = "LEAST_REQUEST"
	LBRandom       LoadBalancer = "RANDOM"
	LBPassthrough  LoadBalancer = "PASSTHROUGH"
)

// TrafficPolicy is the part of a DestinationRule that becomes cluster settings.
type TrafficPolicy struct {
	LoadBalancer     LoadBalancer
	ConnectionPool   *ConnectionPool   // nil: Envoy's defaults
	OutlierDetection *OutlierDetection // nil: none
	TLS              *ClientTLS        // nil: not set (auto mTLS applies)
}

// ConnectionPool becomes Envoy circuit breaker thresholds and connection settings.
// Zero means "not set".
type ConnectionPool struct {
	MaxConnections           uint32        // tcp.maxConnections
	ConnectTimeout           time.Duration // tcp.connectTimeout
	HTTP1MaxPendingRequests  uint32        // http.http1MaxPendingRequests
	HTTP2MaxRequests         uint32        // http.http2MaxRequests
	MaxRequestsPerConnection uint32        // http.maxRequestsPerConnection
	MaxRetries               uint32        // http.maxRetries
	IdleTimeout              time.Duration // http.idleTimeout
}

// OutlierDetection ejects misbehaving endpoints. Zero means "not set".
type OutlierDetection struct {
	Consecutive5xxErrors     uint32 // consecutive5xxErrors
	ConsecutiveGatewayErrors uint32
	Interval                 time.Duration
	BaseEjectionTime         time.Duration
	MaxEjectionPercent       uint32
}

// TLSMode is how a client connects to a destination (DestinationRule
// trafficPolicy.tls.mode).
type TLSMode string

const (
	// TLSDisable: plaintext.
	TLSDisable TLSMode = "DISABLE"
	// TLSSimple: TLS, the server is verified, the client shows no certificate.
	TLSSimple TLSMode = "SIMPLE"
	// TLSMutual: mutual TLS with the certificate files of ClientTLS.
	TLSMutual TLSMode = "MUTUAL"
	// TLSIstioMutual: mutual TLS with the workload certificates minimesh
	// issues (SPIFFE identities).
	TLSIstioMutual TLSMode = "ISTIO_MUTUAL"
)

// ClientTLS is the TLS a client uses towards a destination. Fields that
// Istio ignores in a mode are left empty by the converter: the file fields
// are set only with SIMPLE and MUTUAL (the certificate and key only with
// MUTUAL), and nothing but Mode with DISABLE.
type ClientTLS struct {
	Mode TLSMode
	// ClientCertificate and PrivateKey are PEM files; both are set with MUTUAL.
	ClientCertificate string
	PrivateKey        string
	// CACertificates is a PEM file of the roots that verify the server
	// (SIMPLE, MUTUAL); "" when not written.
	CACertificates string
	// SNI is the server name to send; "" when not written.
	SNI string
	// SubjectAltNames the server's certificate must have one of; empty when
	// not written.
	SubjectAltNames []string
	// InsecureSkipVerify turns off the verification of the server's
	// certificate (SIMPLE, MUTUAL).
	InsecureSkipVerify bool
}

// MTLSMode is what a workload accepts on a port (PeerAuthentication
// mtls.mode).
type MTLSMode string

const (
	// MTLSUnset: inherit from the next level (workload, namespace, mesh).
	MTLSUnset MTLSMode = "UNSET"
	// MTLSDisable: plaintext only.
	MTLSDisable MTLSMode = "DISABLE"
	// MTLSPermissive: mutual TLS and plaintext on the same port.
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSStrict: mutual TLS only.
	MTLSStrict MTLSMode = "STRICT"
)

// PeerAuthentication says what workloads accept on their ports: mutual
// TLS, plaintext, or both. A policy without selector covers its namespace,
// or the whole mesh when it is in the root namespace.
type PeerAuthentication struct {
	Name      string
	Namespace string
	// Selector holds the labels of the workloads the policy applies to, in
	// its namespace; nil: namespace-wide, or mesh-wide in the root namespace.
	Selector map[string]string
	// Mode is MTLSUnset when the policy does not set one.
	Mode MTLSMode
	// PortModes maps a port a workload receives on to its mode; set only on
	// policies with a selector (Istio ignores it on the others).
	PortModes map[uint32]MTLSMode
	Source    Ref
}

// Sidecar limits what the proxies it applies to are configured for: the
// services their egress hosts import, instead of the whole mesh. A proxy
// of a large mesh that calls three services then gets the configuration of
// three services. Without selector it covers its namespace, or, in the
// root namespace, every namespace that has none of its own.
type Sidecar struct {
	Name      string
	Namespace string
	// Selector holds the labels of the workloads it applies to, in its
	// namespace; nil: namespace-wide (mesh-wide in the root namespace).
	Selector map[string]string
	// Egress are the hosts it imports, from every egress listener.
	Egress []HostImport
	Source Ref
}

// HostImport is one "namespace/host" of a Sidecar's egress hosts.
type HostImport struct {
	// Namespace is a namespace name, "*" (any), "." (the Sidecar's own;
	// the proxy's for the mesh-wide default) or "~" (none).
	Namespace string
	// Host is "*", a "*.suffix" wildcard, or a fully qualified name.
	Host string
}
