package mesh

import (
	networking "istio.io/api/networking/v1alpha3"
)

// buildSidecars converts the Sidecars. As with PeerAuthentications, a
// namespace has at most one Sidecar without selector: the first in name
// order wins and the others are reported.
func (b *builder) buildSidecars(objs []Object) {
	wide := map[string]*Sidecar{} // namespace -> its Sidecar without selector
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		sc := convertSidecar(obj.Ref, obj.Spec.(*networking.Sidecar), b.rootNamespace, r)
		if sc == nil {
			continue
		}
		if sc.Selector == nil {
			if first := wide[sc.Namespace]; first != nil {
				r.errorf("spec.workloadSelector", "namespace %q already has Sidecar %s without selector (%s); "+
					"a namespace has one, the first in name order wins", sc.Namespace, first.Name, first.Source.Source)
				continue
			}
			wide[sc.Namespace] = sc
		}
		b.sidecars = append(b.sidecars, sc)
	}
}

// SidecarFor returns the Sidecar that scopes a proxy in namespace, of
// workload w (nil for a proxy that is no registered workload): the first
// one in name order whose selector picks w, else its namespace's one
// without selector, else the mesh-wide default in the root namespace, else
// nil (the proxy gets the whole mesh).
func (s *Snapshot) SidecarFor(namespace string, w *Workload) *Sidecar {
	var wide, mesh *Sidecar
	for _, sc := range s.Sidecars {
		switch {
		case sc.Selector != nil:
			if w != nil && sc.Namespace == w.Namespace && labelsMatch(sc.Selector, w.Labels) {
				return sc
			}
		case sc.Namespace == namespace && wide == nil:
			wide = sc
		case sc.Namespace == s.RootNamespace && mesh == nil:
			mesh = sc
		}
	}
	if wide != nil {
		return wide
	}
	return mesh
}

// Imports reports whether the Sidecar lets a proxy in namespace reach svc:
// one of its egress hosts names svc's namespace ("*" for any, "." for the
// Sidecar's own, "~" for none) and matches svc's host name.
func (sc *Sidecar) Imports(svc *Service, namespace string) bool {
	for _, imp := range sc.Egress {
		if sc.importsNamespace(imp.Namespace, svc.Namespace, namespace) && hostMatches(imp.Host, svc.Hostname) {
			return true
		}
	}
	return false
}

// importsNamespace reports whether an egress host's namespace part covers
// the namespace a service was declared in. "." is the Sidecar's namespace,
// except for the mesh-wide default (which applies to proxies of other
// namespaces): there it is the proxy's own, as in Istio.
func (sc *Sidecar) importsNamespace(part, serviceNamespace, proxyNamespace string) bool {
	switch part {
	case "*":
		return true
	case ".":
		if sc.Selector == nil && sc.Namespace != proxyNamespace {
			return serviceNamespace == proxyNamespace
		}
		return serviceNamespace == sc.Namespace
	default:
		return serviceNamespace == part // "~" names no namespace
	}
}
