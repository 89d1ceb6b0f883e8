package translator

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/minimesh/minimesh/mesh"
)

// Flavor is the kind of xDS client a proxy is. Envoy sidecars and proxyless
// gRPC clients understand different subsets of xDS, so they get different
// resources for the same mesh.
type Flavor string

const (
	// FlavorEnvoy is an Envoy sidecar, in explicit or transparent capture
	// mode (see CaptureMode).
	FlavorEnvoy Flavor = "envoy"
	// FlavorGRPC is a proxyless gRPC client or server (gRPC's own xDS client).
	FlavorGRPC Flavor = "grpc"
)

// CaptureMode is how an Envoy sidecar receives its application's traffic.
type CaptureMode int

const (
	// CaptureExplicit: nothing redirects traffic. The application sends
	// outbound HTTP to Envoy as an HTTP proxy (127.0.0.1:15001), and Envoy
	// listens on the workload's service ports for inbound traffic.
	// Docker Compose and standalone fleets run this way; it is the default.
	CaptureExplicit CaptureMode = iota
	// CaptureTransparent: iptables redirects every outbound connection to
	// 15001 and every inbound one to 15006, and Envoy recovers the original
	// destination. Kubernetes pods with minimesh's init container run this
	// way.
	CaptureTransparent
)

// String names the mode as the golden files and logs show it.
func (m CaptureMode) String() string {
	if m == CaptureTransparent {
		return "transparent"
	}
	return "explicit"
}

// Proxy is one xDS client as the translator sees it.
type Proxy struct {
	// ID is the node ID, "<workload>.<namespace>" by convention.
	ID     string
	Flavor Flavor
	// Capture is how an Envoy sidecar receives traffic, from its node
	// metadata INTERCEPTION_MODE. Always CaptureExplicit for gRPC.
	Capture CaptureMode
	// Namespace is the workload's namespace, or for a client outside the mesh
	// the NAMESPACE in its node metadata ("default" when absent). Short host
	// names resolve in this namespace.
	Namespace string
	// Workload is the registered workload the node ID names, nil for an
	// out-of-mesh client (which gets outbound configuration only).
	Workload *mesh.Workload
	// ListenerNames are the listeners a gRPC client subscribed to: dial
	// targets ("my-app", "my-app.default:80") and server listeners. Envoy
	// subscribes to all listeners, so this is empty for Envoy.
	ListenerNames []string
	// Certificate is the workload's certificate, served to Envoy as the SDS
	// secret "default"; nil when none was issued.
	Certificate *Certificate
	// TrustBundlePEM are the mesh's root certificates (SDS secret "ROOTCA").
	TrustBundlePEM []byte
}

// hasIdentity says whether the proxy can do mesh mTLS: it is a registered
// workload, and an Envoy has its certificate (a proxyless gRPC workload
// reads its own from files).
func (p Proxy) hasIdentity() bool {
	return p.Workload != nil && (p.Flavor == FlavorGRPC || p.Certificate != nil)
}

// FlavorOf tells an Envoy from a proxyless gRPC client by the user agent
// name the client puts in its node ("envoy", "gRPC Go", "gRPC Node",
// "gRPC C-core", ...). Anything that is not gRPC is treated as Envoy.
func FlavorOf(node *corev3.Node) Flavor {
	if strings.Contains(strings.ToLower(node.GetUserAgentName()), "grpc") {
		return FlavorGRPC
	}
	return FlavorEnvoy
}

// NodeNamespaceKey is the node metadata field that places an out-of-mesh
// client in a namespace, as Istio's proxies do.
const NodeNamespaceKey = "NAMESPACE"

// NodeInterceptionModeKey is the node metadata field that says how traffic
// reaches an Envoy sidecar, with Istio's key and values: "REDIRECT" or
// "TPROXY" (iptables capture: transparent mode), "NONE" or absent (explicit
// mode). Unlike labels, this is taken from the node: it describes the
// proxy's own network setup, which the registry does not know, and a proxy
// that lies about it only breaks its own traffic.
const NodeInterceptionModeKey = "INTERCEPTION_MODE"

// CaptureOf reads the capture mode from an Envoy node's metadata. TPROXY is
// treated as REDIRECT: the listeners are the same, only the iptables rules
// differ. Any other value means explicit mode, today's default.
func CaptureOf(node *corev3.Node) CaptureMode {
	switch strings.ToUpper(node.GetMetadata().GetFields()[NodeInterceptionModeKey].GetStringValue()) {
	case "REDIRECT", "TPROXY":
		return CaptureTransparent
	default:
		return CaptureExplicit
	}
}

// NewProxy identifies the proxy behind an xDS node. Labels, service account
// and address come from the registered workload, never from what the node
// claims; only an unregistered node's metadata NAMESPACE is used.
func NewProxy(node *corev3.Node, snap *mesh.Snapshot, defaultNamespace string) Proxy {
	return newProxy(node, findWorkload(snap, node.GetId()), defaultNamespace)
}

// NewProxy is the package's NewProxy, with the workload found by index
// (what a control plane with thousands of proxies wants).
func (ix *index) NewProxy(node *corev3.Node, defaultNamespace string) Proxy {
	return newProxy(node, ix.workloads[node.GetId()], defaultNamespace)
}

func newProxy(node *corev3.Node, w *mesh.Workload, defaultNamespace string) Proxy {
	p := Proxy{ID: node.GetId(), Flavor: FlavorOf(node)}
	if p.Flavor == FlavorEnvoy {
		p.Capture = CaptureOf(node)
	}
	if w != nil {
		p.Workload = w
		p.Namespace = w.Namespace
		return p
	}
	p.Namespace = defaultNamespace
	if ns := node.GetMetadata().GetFields()[NodeNamespaceKey].GetStringValue(); ns != "" {
		p.Namespace = ns
	}
	return p
}

// findWorkload returns the workload whose node ID is id, or nil.
func findWorkload(snap *mesh.Snapshot, id string) *mesh.Workload {
	if snap == nil {
		return nil
	}
	for _, w := range snap.Workloads {
		if w.ID() == id {
			return w
		}
	}
	return nil
}
