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
	// FlavorEnvoy is an Envoy sidecar (explicit capture: HTTP proxy on 15001).
	FlavorEnvoy Flavor = "envoy"
	// FlavorGRPC is a proxyless gRPC client or server (gRPC's own xDS client).
	FlavorGRPC Flavor = "grpc"
)

// Proxy is one xDS client as the translator sees it.
type Proxy struct {
	// ID is the node ID, "<workload>.<namespace>" by convention.
	ID     string
	Flavor Flavor
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
