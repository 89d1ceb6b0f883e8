package mesh

import "cmp"

// DefaultRootNamespace is the namespace of mesh-wide policies when Options
// leave it empty, as in Istio.
const DefaultRootNamespace = "istio-system"

// MTLSMode returns the mode in effect for traffic arriving at workload w on
// port, the port the workload receives on (not the service port). It is
// never MTLSUnset. Port 0 gives the mode of the ports that no port-level
// setting names.
//
// The precedence is Istio's. Three policies can apply to a workload:
//   - the workload policy: one with a selector matching w's labels, in w's
//     namespace (not the root namespace: Istio ignores selectors there).
//     When several match, Istio uses the oldest; minimesh has no creation
//     times and uses the first in name order (Build warns about it);
//   - the namespace policy: the one without selector in w's namespace;
//   - the mesh policy: the one without selector in the root namespace.
//
// The workload policy's port-level mode for port wins; then its mode, then
// the namespace policy's, then the mesh policy's. UNSET at any level
// inherits from the next one, and when every level inherits (or there is
// no policy at all) the mode is PERMISSIVE.
func (s *Snapshot) MTLSMode(w *Workload, port uint32) MTLSMode {
	workload, namespace, mesh := s.peerAuthenticationsFor(w)
	if workload != nil {
		if m := workload.PortModes[port]; isSet(m) {
			return m
		}
	}
	for _, pa := range []*PeerAuthentication{workload, namespace, mesh} {
		if pa != nil && isSet(pa.Mode) {
			return pa.Mode
		}
	}
	return MTLSPermissive
}

// isSet reports whether a mode decides, rather than inherits.
func isSet(m MTLSMode) bool { return m != "" && m != MTLSUnset }

// rootNamespace returns the root namespace of the snapshot, with the
// default for snapshots built by hand.
func (s *Snapshot) rootNamespace() string {
	return cmp.Or(s.RootNamespace, DefaultRootNamespace)
}

// peerAuthenticationsFor returns the policies that apply to w at each
// level, nil where there is none. For a workload in the root namespace the
// namespace policy is the mesh policy, returned as mesh only.
func (s *Snapshot) peerAuthenticationsFor(w *Workload) (workload, namespace, mesh *PeerAuthentication) {
	root := s.rootNamespace()
	for _, pa := range s.PeerAuthentications {
		switch {
		case pa.Selector == nil && pa.Namespace == root:
			mesh = cmp.Or(mesh, pa)
		case pa.Selector == nil && pa.Namespace == w.Namespace:
			namespace = cmp.Or(namespace, pa)
		case selects(pa, w, root):
			workload = cmp.Or(workload, pa)
		}
	}
	return workload, namespace, mesh
}

// selects reports whether pa is a workload policy that applies to w.
func selects(pa *PeerAuthentication, w *Workload, root string) bool {
	return pa.Selector != nil && pa.Namespace == w.Namespace && pa.Namespace != root &&
		labelsMatch(pa.Selector, w.Labels)
}
