package mesh

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	security "istio.io/api/security/v1beta1"
)

// mtlsModes maps Istio's mutual TLS modes to the model.
var mtlsModes = map[security.PeerAuthentication_MutualTLS_Mode]MTLSMode{
	security.PeerAuthentication_MutualTLS_UNSET:      MTLSUnset,
	security.PeerAuthentication_MutualTLS_DISABLE:    MTLSDisable,
	security.PeerAuthentication_MutualTLS_PERMISSIVE: MTLSPermissive,
	security.PeerAuthentication_MutualTLS_STRICT:     MTLSStrict,
}

// convertPeerAuthentication turns a PeerAuthentication into the model, or
// returns nil after reporting why it cannot. rootNamespace holds the
// mesh-wide policies. Checks that need the other policies (two
// namespace-wide policies in one namespace, two selectors picking the same
// workload) are in build_peerauthentication.go.
func convertPeerAuthentication(ref Ref, pa *security.PeerAuthentication, rootNamespace string, r *report) *PeerAuthentication {
	selector := convertSelector(pa.GetSelector().GetMatchLabels(), "spec.selector.matchLabels", r)
	mode := convertMTLSMode(pa.GetMtls(), "spec.mtls.mode", r)
	ports := convertPortModes(pa.GetPortLevelMtls(), "spec.portLevelMtls", r)
	if !r.ok() {
		return nil
	}
	switch {
	case selector != nil && ref.Namespace == rootNamespace:
		// Istio ignores these: a selector picks workloads in the policy's
		// own namespace, and the root namespace is for mesh-wide policies.
		r.warnf("spec.selector", "a policy with a selector in the root namespace %q applies to no workload "+
			"(Istio ignores it too); put it in the namespace of the workloads it selects, "+
			"or remove the selector to make it mesh-wide", rootNamespace)
	case selector == nil && ports != nil:
		// Istio's validation rejects this; at run time it ignores the ports.
		r.warnf("spec.portLevelMtls", "ignored: port-level modes apply only to a policy with a selector "+
			"(Istio rejects this policy); the policy's mode applies to every port")
		ports = nil
	}
	return &PeerAuthentication{
		Name:      ref.Name,
		Namespace: ref.Namespace,
		Selector:  selector,
		Mode:      mode,
		PortModes: ports,
		Source:    ref,
	}
}

// convertSelector checks selector.matchLabels and returns a copy, or nil
// when there is none: an empty selector selects the whole namespace, as in
// Istio.
func convertSelector(labels map[string]string, path fieldPath, r *report) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		switch {
		case k == "":
			r.errorf(path, "a label name must not be empty")
		case strings.Contains(k, "*") || strings.Contains(labels[k], "*"):
			r.errorf(path.key(k), "wildcards are not allowed in a selector (labels must match exactly)")
		}
	}
	return maps.Clone(labels)
}

// convertMTLSMode converts one mtls block; nil (not set) is UNSET.
func convertMTLSMode(m *security.PeerAuthentication_MutualTLS, path fieldPath, r *report) MTLSMode {
	mode, ok := mtlsModes[m.GetMode()]
	if !ok {
		r.errorf(path, "unknown mode %d, want one of %s",
			m.GetMode(), strings.Join(enumNames(m.GetMode().Descriptor()), ", "))
	}
	return mode
}

// convertPortModes converts portLevelMtls; nil stays nil.
func convertPortModes(ports map[uint32]*security.PeerAuthentication_MutualTLS, path fieldPath, r *report) map[uint32]MTLSMode {
	if len(ports) == 0 {
		return nil
	}
	out := make(map[uint32]MTLSMode, len(ports))
	for _, port := range slices.Sorted(maps.Keys(ports)) {
		p := path.key(strconv.FormatUint(uint64(port), 10))
		checkPortNumber(port, p, r)
		out[port] = convertMTLSMode(ports[port], p.field("mode"), r)
	}
	return out
}
