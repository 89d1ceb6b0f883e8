package mesh

import (
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// convertSidecar turns a Sidecar into the model, or returns nil after
// reporting why it cannot. minimesh reads its egress hosts: which services
// the proxies it applies to may call, so that each gets the configuration
// of what it uses rather than of the whole mesh.
func convertSidecar(ref Ref, sc *networking.Sidecar, rootNamespace string, r *report) *Sidecar {
	selector := convertSelector(sc.GetWorkloadSelector().GetLabels(), "spec.workloadSelector.labels", r)
	if selector != nil && ref.Namespace == rootNamespace {
		// Istio's own rule: the mesh-wide default has no selector.
		r.errorf("spec.workloadSelector", "a Sidecar in the root namespace %q is the mesh-wide default "+
			"and must not have a workloadSelector; put it in the namespace of the workloads it selects", rootNamespace)
	}
	if len(sc.GetEgress()) == 0 {
		r.errorf("spec.egress", "missing: minimesh reads a Sidecar's egress hosts; without them "+
			"it would change nothing (Istio requires egress too)")
	}
	var imports []HostImport
	for i, eg := range sc.GetEgress() {
		path := fieldPath("spec.egress").index(i)
		if len(eg.GetHosts()) == 0 {
			r.errorf(path.field("hosts"), "missing: an egress listener needs at least one \"namespace/host\"")
		}
		for j, h := range eg.GetHosts() {
			if imp, ok := convertHostImport(h, path.field("hosts").index(j), r); ok {
				imports = append(imports, imp)
			}
		}
	}
	if !r.ok() {
		return nil
	}
	return &Sidecar{
		Name:      ref.Name,
		Namespace: ref.Namespace,
		Selector:  selector,
		Egress:    imports,
		Source:    ref,
	}
}

// convertHostImport parses "namespace/dnsName" as Istio writes egress
// hosts: namespace is a name, "*" (any), "." (the Sidecar's own; the
// proxy's for the mesh-wide default) or "~" (none); dnsName is "*", a
// "*.suffix" wildcard or a fully qualified name.
func convertHostImport(s string, path fieldPath, r *report) (HostImport, bool) {
	ns, host, found := strings.Cut(s, "/")
	switch {
	case !found:
		r.errorf(path, "%q: want \"namespace/host\", such as \"./*\", \"istio-system/*\" or \"*/%s\"", s, s)
		return HostImport{}, false
	case ns == "":
		r.errorf(path, "%q: empty namespace; write \"*\" for any namespace or \".\" for this one", s)
		return HostImport{}, false
	case host == "":
		r.errorf(path, "%q: empty host; write \"*\" for every host of the namespace", s)
		return HostImport{}, false
	case !isValidHost(host):
		r.errorf(path, "%q: %q is not a DNS name or a \"*.suffix\" wildcard", s, host)
		return HostImport{}, false
	}
	return HostImport{Namespace: ns, Host: host}, true
}
