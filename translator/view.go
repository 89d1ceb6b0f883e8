package translator

// A proxy is configured for a view of the mesh: the whole mesh, or, when an
// Istio Sidecar applies to it, the services the Sidecar's egress hosts
// import. In a mesh of a thousand services, a proxy that calls three of
// them then gets three services' clusters, endpoints and routes, not a
// thousand's: its configuration grows with what it uses, not with the mesh.
//
// A view also holds the services the imported ones route to (a
// VirtualService of an imported host may send traffic to a host the
// Sidecar does not name): their clusters must exist for the routes to
// work, but they get no virtual host of their own, since the proxy does
// not call them by name.

import (
	"maps"
	"slices"
	"strings"

	"github.com/minimesh/minimesh/mesh"
)

// view is the part of the mesh one proxy is configured for. Views are
// shared: every proxy with the same Sidecar (and, for a Sidecar, the same
// namespace) has the very same view, so the memo can key on it.
type view struct {
	key viewKey
	// imported are the services the proxy calls by name (virtual hosts,
	// listeners), sorted by hostname.
	imported []*mesh.Service
	// services are imported plus the services their routes send to: the
	// ones that get clusters. Sorted by hostname.
	services []*mesh.Service
}

// viewKey identifies a view: the zero key is the whole mesh; a Sidecar's
// view depends on the proxy's namespace too ("." in the mesh-wide default
// means the proxy's own namespace).
type viewKey struct {
	sidecar   *mesh.Sidecar
	namespace string
}

// inNamespace returns the key of what depends on both the view and the
// proxy's namespace (short host names): route configurations.
func (v *view) inNamespace(ns string) viewKey { return viewKey{v.key.sidecar, ns} }

// viewFor returns the view of proxy p, built once per Sidecar and
// namespace. Proxyless gRPC clients ask for what they use by name and are
// never scoped.
func (ix *index) viewFor(p Proxy) *view {
	var key viewKey
	if p.Flavor == FlavorEnvoy {
		if sc := ix.sidecarFor(p.Namespace, p.Workload); sc != nil {
			key = viewKey{sc, p.Namespace}
		}
	}
	ix.memo.mu.Lock()
	v := ix.memo.views[key]
	ix.memo.mu.Unlock()
	if v != nil {
		return v
	}
	v = ix.buildView(key)
	ix.memo.mu.Lock()
	ix.memo.views[key] = v
	ix.memo.mu.Unlock()
	return v
}

// buildView lists the services of a view.
func (ix *index) buildView(key viewKey) *view {
	if key.sidecar == nil {
		return &view{key: key, imported: ix.snap.Services, services: ix.snap.Services}
	}
	v := &view{key: key}
	inView := map[string]bool{}
	for _, svc := range ix.importedServices(key) {
		v.imported = append(v.imported, svc)
		inView[svc.Hostname] = true
	}
	// The destinations of the imported services' routes.
	for _, svc := range v.imported {
		vs := ix.routes[svc.Hostname]
		if vs == nil {
			continue
		}
		for _, rule := range vs.HTTP {
			for _, d := range rule.Route {
				inView[d.Host] = true
			}
		}
	}
	for _, svc := range ix.snap.Services {
		if inView[svc.Hostname] {
			v.services = append(v.services, svc)
		}
	}
	return v
}

// importedServices returns the services a Sidecar imports for a proxy in
// key.namespace, sorted by hostname. An egress host that names one host
// is looked up; only wildcards scan the services.
func (ix *index) importedServices(key viewKey) []*mesh.Service {
	found := map[*mesh.Service]bool{}
	scan := false
	for _, imp := range key.sidecar.Egress {
		if strings.HasPrefix(imp.Host, "*") {
			scan = true
			continue
		}
		if svc := ix.services[imp.Host]; svc != nil && key.sidecar.Imports(svc, key.namespace) {
			found[svc] = true
		}
	}
	if scan {
		for _, svc := range ix.snap.Services {
			if !found[svc] && key.sidecar.Imports(svc, key.namespace) {
				found[svc] = true
			}
		}
	}
	out := make([]*mesh.Service, 0, len(found))
	for svc := range found {
		out = append(out, svc)
	}
	slices.SortFunc(out, func(a, b *mesh.Service) int { return strings.Compare(a.Hostname, b.Hostname) })
	return out
}

// sidecarFor is mesh.Snapshot.SidecarFor with the Sidecars indexed: what
// thousands of proxies want. A Sidecar with a selector is filed under one
// label of its selector, so a workload looks at the Sidecars filed under
// its own labels only.
func (ix *index) sidecarFor(namespace string, w *mesh.Workload) *mesh.Sidecar {
	if w != nil {
		var best *mesh.Sidecar
		for k, v := range w.Labels {
			for _, sc := range ix.sidecarsByLabel[sidecarLabel{w.Namespace, k, v}] {
				if labelsMatch(sc.Selector, w.Labels) && (best == nil || sc.Name < best.Name) {
					best = sc
				}
			}
		}
		if best != nil {
			return best
		}
	}
	if sc := ix.sidecarsWide[namespace]; sc != nil {
		return sc
	}
	return ix.sidecarsWide[ix.snap.RootNamespace]
}

// sidecarLabel files a Sidecar with a selector under one of its labels.
type sidecarLabel struct{ namespace, key, value string }

// indexSidecars fills the lookups of sidecarFor. Sidecars come sorted by
// namespace and name, and the first namespace-wide one of a namespace is
// the one that counts.
func (ix *index) indexSidecars() {
	ix.sidecarsByLabel = map[sidecarLabel][]*mesh.Sidecar{}
	ix.sidecarsWide = map[string]*mesh.Sidecar{}
	for _, sc := range ix.snap.Sidecars {
		if sc.Selector == nil {
			if ix.sidecarsWide[sc.Namespace] == nil {
				ix.sidecarsWide[sc.Namespace] = sc
			}
			continue
		}
		k := slices.Min(slices.Collect(maps.Keys(sc.Selector)))
		key := sidecarLabel{sc.Namespace, k, sc.Selector[k]}
		ix.sidecarsByLabel[key] = append(ix.sidecarsByLabel[key], sc)
	}
}
