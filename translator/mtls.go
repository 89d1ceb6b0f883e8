package translator

// Mutual TLS between workloads. The server side follows the
// PeerAuthentication mode of the workload port (STRICT, PERMISSIVE,
// DISABLE); the client side follows the DestinationRule's tls mode, or, when
// none is set, auto mTLS: mutual TLS towards every endpoint that has a
// sidecar (label security.istio.io/tlsMode: istio, as Istio's injector sets
// it) and does not DISABLE mTLS on that port, and towards every endpoint
// whose port is STRICT.

import (
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/minimesh/minimesh/mesh"
)

// TLSModeLabel marks a workload that has an Envoy sidecar, which accepts
// mesh mTLS even under PERMISSIVE. Proxyless gRPC workloads must not carry
// it: a proxyless server accepts mTLS only under STRICT (see grpc.go).
const TLSModeLabel = "security.istio.io/tlsMode"

// transportSocketMatchKey is the endpoint metadata namespace Envoy reads to
// pick a cluster's transport socket per endpoint.
const transportSocketMatchKey = "envoy.transport_socket_match"

// Certificate is a workload's certificate chain and private key (PEM), as
// Envoy gets them over SDS.
type Certificate struct {
	ChainPEM []byte
	KeyPEM   []byte
}

// Options are the translator's settings that do not come from the mesh.
type Options struct {
	// TrustDomain of the SPIFFE IDs, "cluster.local" by default.
	TrustDomain string
}

// spiffeID is the identity of a service account.
func (ix *index) spiffeID(namespace, serviceAccount string) string {
	return "spiffe://" + ix.trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}

// endpointMTLS reports whether a client should use mesh mTLS towards ep
// when no DestinationRule says otherwise (auto mTLS).
func (ix *index) endpointMTLS(svc *mesh.Service, ep *mesh.Endpoint, p mesh.Port) bool {
	mode := mesh.MTLSPermissive
	if ep.Workload != nil {
		mode = ix.snap.MTLSMode(ep.Workload, ep.PortFor(p))
	}
	switch {
	case svc.External || mode == mesh.MTLSDisable:
		return false
	case mode == mesh.MTLSStrict:
		return true
	}
	return ep.Labels[TLSModeLabel] == "istio"
}

// inboundMode is what a workload accepts on port.
func (ix *index) inboundMode(w *mesh.Workload, port uint32) mesh.MTLSMode {
	return ix.snap.MTLSMode(w, port)
}

// clusterSANs are the SPIFFE IDs a client accepts from the endpoints of a
// cluster: one per service account behind it.
func (ix *index) clusterSANs(svc *mesh.Service, selector map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ep := range svc.Endpoints {
		if !labelsMatch(selector, ep.Labels) || ep.ServiceAccount == "" {
			continue
		}
		ns := svc.Namespace
		if ep.Workload != nil {
			ns = ep.Workload.Namespace
		}
		if id := ix.spiffeID(ns, ep.ServiceAccount); !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// applyClusterTLS sets how a cluster's connections are secured.
func (ix *index) applyClusterTLS(c *clusterv3.Cluster, ref clusterRef, svc *mesh.Service, port mesh.Port,
	policy *mesh.TrafficPolicy, selector map[string]string, flavor Flavor, identity bool) error {
	sni := SNI(ref.port, ref.subset, ref.host)
	var tls *mesh.ClientTLS
	if policy != nil {
		tls = policy.TLS
	}
	if tls != nil {
		if tls.Mode == mesh.TLSIstioMutual && !identity {
			return nil // no certificate to present: plaintext, and STRICT servers refuse it
		}
		return ix.explicitTLS(c, tls, sni, svc, selector, flavor)
	}
	if !identity {
		return nil // a client outside the mesh has no certificate: no auto mTLS
	}

	// Auto mTLS.
	var mtls, plain int
	for _, ep := range svc.Endpoints {
		if !labelsMatch(selector, ep.Labels) {
			continue
		}
		if ix.endpointMTLS(svc, ep, port) {
			mtls++
		} else {
			plain++
		}
	}
	if mtls == 0 {
		return nil
	}
	ts, err := TransportSocket(UpstreamMTLS(flavor, sni, ix.clusterSANs(svc, selector)))
	if err != nil {
		return err
	}
	switch {
	case plain == 0: // every endpoint speaks mTLS
		c.TransportSocket = ts
		return nil
	case flavor == FlavorGRPC:
		// gRPC has no per-endpoint transport sockets: a cluster that mixes
		// both kinds of endpoint stays plaintext.
		return nil
	}
	// Envoy picks per endpoint, by the metadata lbEndpoints set.
	raw, err := anyOf(&rawbufferv3.RawBuffer{})
	if err != nil {
		return err
	}
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: tlsModeMetadata(), TransportSocket: ts},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &corev3.TransportSocket{
			Name: "envoy.transport_sockets.raw_buffer", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: raw},
		}},
	}
	return nil
}

// explicitTLS applies a DestinationRule tls setting.
func (ix *index) explicitTLS(c *clusterv3.Cluster, tls *mesh.ClientTLS, sni string, svc *mesh.Service,
	selector map[string]string, flavor Flavor) error {
	var ctx proto.Message
	switch tls.Mode {
	case mesh.TLSIstioMutual:
		if tls.SNI != "" {
			sni = tls.SNI
		}
		sans := tls.SubjectAltNames
		if len(sans) == 0 {
			sans = ix.clusterSANs(svc, selector)
		}
		ctx = UpstreamMTLS(flavor, sni, sans)
	case mesh.TLSSimple, mesh.TLSMutual:
		if flavor == FlavorGRPC {
			return nil // gRPC has no file-based TLS from xDS: plaintext, as Istio does
		}
		if tls.SNI != "" {
			sni = tls.SNI
		} else if !svc.External {
			sni = ""
		} else {
			sni = svc.Hostname
		}
		ctx = UpstreamFileTLS(sni, tls.CACertificates, tls.ClientCertificate, tls.PrivateKey,
			tls.SubjectAltNames, tls.InsecureSkipVerify)
	default: // DISABLE
		return nil
	}
	ts, err := TransportSocket(ctx)
	if err != nil {
		return err
	}
	c.TransportSocket = ts
	return nil
}

// tlsModeMetadata is the endpoint metadata that selects mTLS.
func tlsModeMetadata() *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}}
}

// markMTLS adds the metadata that makes Envoy use mTLS to an endpoint.
func markMTLS(ep *endpointv3.LbEndpoint) {
	ep.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{transportSocketMatchKey: tlsModeMetadata()}}
}

// unmarkMTLS removes the mTLS marks from endpoints of a cluster that does
// not choose its socket per endpoint, so they do not clutter its config.
func unmarkMTLS(cla *endpointv3.ClusterLoadAssignment) {
	for _, loc := range cla.GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			ep.Metadata = nil
		}
	}
}
