package mesh

import (
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// meshGateway is the reserved gateway name that means "the sidecars".
const meshGateway = "mesh"

// convertVirtualService turns a VirtualService into the model, or returns
// nil after reporting why it cannot (or why it does not apply to minimesh).
// Destinations are checked against reg: the services and the
// DestinationRules already built.
func convertVirtualService(ref Ref, vs *networking.VirtualService, reg *registry, r *report) *VirtualService {
	if !appliesToMesh(vs.GetGateways(), r) {
		return nil
	}
	hosts := virtualServiceHosts(vs.GetHosts(), ref.Namespace, reg, r)
	routes := convertHTTPRoutes(vs.GetHttp(), ref.Namespace, reg, r)
	if !r.ok() {
		return nil
	}
	if len(routes) == 0 {
		// Without routes the hosts would answer 404 to everything; without
		// the VirtualService they get the default route to the service.
		r.warnf("spec.http", "no http rule minimesh can apply (it implements http rules only): "+
			"VirtualService ignored")
		return nil
	}
	return &VirtualService{
		Name:      ref.Name,
		Namespace: ref.Namespace,
		Hosts:     hosts,
		HTTP:      routes,
		Source:    ref,
	}
}

// appliesToMesh reports whether a VirtualService with these gateways
// applies to sidecars: no gateways, or "mesh" among them. Other gateways
// are not implemented; a VirtualService only for them is ignored, as it
// would not touch sidecars in Istio either.
func appliesToMesh(gateways []string, r *report) bool {
	var others []string
	mesh := len(gateways) == 0
	for _, g := range gateways {
		if g == meshGateway {
			mesh = true
		} else {
			others = append(others, g)
		}
	}
	switch {
	case !mesh:
		r.warnf("spec.gateways", "applies only to gateways (%s), which minimesh does not implement: "+
			"VirtualService ignored (add \"mesh\" to apply it to sidecars)", strings.Join(others, ", "))
	case len(others) > 0:
		r.warnf("spec.gateways", "gateways %s not supported by minimesh, ignored; the rules apply to the mesh",
			strings.Join(others, ", "))
	}
	return mesh
}

// virtualServiceHosts checks spec.hosts and returns them resolved, without
// duplicates.
func virtualServiceHosts(hosts []string, namespace string, reg *registry, r *report) []string {
	if len(hosts) == 0 {
		r.errorf("spec.hosts", "missing: a VirtualService needs at least one host")
	}
	var out []string
	seen := map[string]int{} // resolved host -> index where first seen
	for i, host := range hosts {
		path := fieldPath("spec.hosts").index(i)
		fqdn := ResolveHost(host, namespace, reg.domainSuffix)
		first, dup := seen[fqdn]
		switch {
		case host == "":
			r.errorf(path, "empty host")
		case host == "*":
			r.errorf(path, "the host \"*\" is not allowed in a VirtualService for the mesh "+
				"(Istio rejects it too): name the services")
		case !isValidHost(host):
			r.errorf(path, "%q is not a valid host name", host)
		case dup:
			r.warnf(path, "%q is the same host as spec.hosts[%d] (%s)", host, first, fqdn)
		default:
			if !reg.anyService(fqdn) {
				r.warnf(path, "%q matches no service (%sknown hosts: %s)%s",
					host, resolvedNote(host, fqdn), listNames(reg.hostnames), didYouMean(fqdn, reg.hostnames))
			}
			seen[fqdn] = i
			out = append(out, fqdn)
		}
	}
	return out
}

// resolvedNote tells, in a message, what a short name resolved to:
// "resolved to my-app.default.svc.cluster.local; ", or "" for a host that
// was already fully qualified.
func resolvedNote(host, fqdn string) string {
	if host == fqdn {
		return ""
	}
	return "resolved to " + fqdn + "; "
}

// convertHTTPRoutes converts spec.http, in order. A rule whose match blocks
// are all skipped (for gateways only, or using conditions minimesh does not
// implement) never matches, so it is left out.
func convertHTTPRoutes(rules []*networking.HTTPRoute, namespace string, reg *registry, r *report) []HTTPRoute {
	out := make([]HTTPRoute, 0, len(rules))
	for i, rule := range rules {
		path := fieldPath("spec.http").index(i)
		route, matches := convertHTTPRoute(rule, path, namespace, reg, r)
		if !matches {
			r.warnf(path, "none of its match blocks can ever match: rule skipped")
			continue
		}
		out = append(out, route)
	}
	return out
}

// convertHTTPRoute converts one http rule. It returns false when the rule
// can never match.
func convertHTTPRoute(rule *networking.HTTPRoute, path fieldPath, namespace string, reg *registry, r *report) (HTTPRoute, bool) {
	route := HTTPRoute{
		Name:    rule.GetName(),
		Route:   convertDestinations(rule.GetRoute(), path.field("route"), namespace, reg, r),
		Timeout: duration(rule.GetTimeout(), path.field("timeout"), r),
		Retries: convertRetries(rule.GetRetries(), path.field("retries"), r),
	}
	for i, m := range rule.GetMatch() {
		match, ok := convertMatch(m, path.field("match").index(i), r)
		if ok {
			route.Match = append(route.Match, match)
		}
	}
	return route, len(rule.GetMatch()) == 0 || len(route.Match) > 0
}

// convertRetries converts a retry policy; nil stays nil.
func convertRetries(rp *networking.HTTPRetry, path fieldPath, r *report) *Retries {
	if rp == nil {
		return nil
	}
	return &Retries{
		Attempts:      count(rp.GetAttempts(), path.field("attempts"), r),
		PerTryTimeout: duration(rp.GetPerTryTimeout(), path.field("perTryTimeout"), r),
		RetryOn:       rp.GetRetryOn(),
	}
}
