package mesh

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// The parts of a VirtualService http rule: matches and destinations.

// convertMatch converts one match block. It returns false when the block
// can never match a sidecar's request: it is for gateways only, or it uses
// a condition minimesh does not implement (ignoring the condition would
// match more requests than meant, so the block is skipped instead; the
// decoder has warned about the field).
func convertMatch(m *networking.HTTPMatchRequest, path fieldPath, r *report) (HTTPMatch, bool) {
	match := HTTPMatch{
		Name:    m.GetName(),
		URI:     convertStringMatch(m.GetUri(), path.field("uri"), r),
		Method:  convertStringMatch(m.GetMethod(), path.field("method"), r),
		Headers: convertHeaderMatches(m.GetHeaders(), path.field("headers"), r),
	}
	if gw := m.GetGateways(); len(gw) > 0 && !slices.Contains(gw, meshGateway) {
		r.warnf(path.field("gateways"), "this match block applies only to gateways (%s), "+
			"never to sidecars: skipped", strings.Join(gw, ", "))
		return match, false
	}
	unsupported := findUnsupported("VirtualService", m, "http.match", path)
	return match, len(unsupported) == 0
}

// convertStringMatch converts a StringMatch; nil stays nil. Regular
// expressions must be RE2, the syntax Envoy and Go's regexp share.
func convertStringMatch(sm *networking.StringMatch, path fieldPath, r *report) *StringMatch {
	if sm == nil {
		return nil
	}
	switch m := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &StringMatch{Kind: MatchExact, Value: m.Exact}
	case *networking.StringMatch_Prefix:
		return &StringMatch{Kind: MatchPrefix, Value: m.Prefix}
	case *networking.StringMatch_Regex:
		if _, err := regexp.Compile(m.Regex); err != nil {
			r.errorf(path.field("regex"), "not a valid RE2 regular expression: %s",
				strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		return &StringMatch{Kind: MatchRegex, Value: m.Regex}
	}
	r.errorf(path, "empty match: set exact, prefix or regex")
	return nil
}

// convertHeaderMatches converts header matches: names in lower case (HTTP
// header names are case-insensitive, and HTTP/2 sends them in lower case),
// sorted by name.
func convertHeaderMatches(headers map[string]*networking.StringMatch, path fieldPath, r *report) []HeaderMatch {
	var out []HeaderMatch
	seen := map[string]string{} // lower-case name -> name as written
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		p := path.key(name)
		lower := strings.ToLower(name)
		if prev, dup := seen[lower]; dup {
			r.errorf(p, "same header as %q (header names are case-insensitive)", prev)
			continue
		}
		seen[lower] = name
		if headers[name].GetMatchType() == nil {
			r.errorf(p, "empty match: set exact, prefix or regex (presence matches are not "+
				"supported by minimesh; regex: \".*\" requires the header to be present)")
			continue
		}
		if sm := convertStringMatch(headers[name], p, r); sm != nil {
			out = append(out, HeaderMatch{Name: lower, Value: *sm})
		}
	}
	slices.SortFunc(out, func(a, b HeaderMatch) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// convertDestinations converts the weighted destinations of a rule and
// checks their weights: a single destination without a weight gets 100,
// otherwise the weights must add up to exactly 100.
func convertDestinations(routes []*networking.HTTPRouteDestination, path fieldPath, namespace string, reg *registry, r *report) []RouteDestination {
	if len(routes) == 0 {
		r.errorf(path, "missing: every http rule needs a route with at least one destination "+
			"(redirect, directResponse and delegate are not supported by minimesh)")
		return nil
	}
	out := make([]RouteDestination, 0, len(routes))
	negative := false
	for i, rd := range routes {
		p := path.index(i)
		d := convertDestination(rd.GetDestination(), p.field("destination"), namespace, reg, r)
		if w := rd.GetWeight(); w < 0 {
			r.errorf(p.field("weight"), "must not be negative, got %d", w)
			negative = true
		}
		d.Weight = uint32(max(rd.GetWeight(), 0))
		out = append(out, d)
	}
	if len(out) == 1 && out[0].Weight == 0 {
		out[0].Weight = 100
	}
	if sum := weightSum(out); !negative && sum != 100 {
		r.errorf(path, "weights sum to %d, want 100", sum)
	}
	return out
}

// weightSum adds up the weights of destinations.
func weightSum(dests []RouteDestination) int64 {
	var sum int64
	for _, d := range dests {
		sum += int64(d.Weight)
	}
	return sum
}

// convertDestination converts one destination and checks it against the
// registry: the host must be a known service, the subset must be defined by
// the host's DestinationRule, the port must be a port of the service.
func convertDestination(d *networking.Destination, path fieldPath, namespace string, reg *registry, r *report) RouteDestination {
	if d == nil {
		r.errorf(path, "missing: a route needs a destination")
		return RouteDestination{}
	}
	if d.GetHost() == "" {
		r.errorf(path.field("host"), "missing: a destination needs a host")
		return RouteDestination{}
	}
	fqdn := ResolveHost(d.GetHost(), namespace, reg.domainSuffix)
	svc := reg.services[fqdn]
	if svc == nil {
		r.errorf(path.field("host"), "route to an unknown host %q (%sknown hosts: %s)%s",
			d.GetHost(), resolvedNote(d.GetHost(), fqdn), listNames(reg.hostnames), didYouMean(fqdn, reg.hostnames))
		return RouteDestination{Host: fqdn}
	}
	checkSubset(d.GetSubset(), fqdn, path.field("subset"), reg, r)
	port := d.GetPort().GetNumber()
	if port != 0 && svc.Port(port) == nil {
		r.errorf(path.field("port").field("number"), "service %s has no port %d (ports: %s)",
			fqdn, port, listNames(portNumbers(svc)))
	}
	return RouteDestination{Host: fqdn, Subset: d.GetSubset(), Port: port}
}

// checkSubset checks that a destination's subset (if any) is defined by the
// DestinationRule of its host.
func checkSubset(subset, host string, path fieldPath, reg *registry, r *report) {
	if subset == "" {
		return
	}
	dr := reg.destinationRuleFor(host)
	if dr == nil {
		r.errorf(path, "subset %q of %s: no DestinationRule defines subsets for that host", subset, host)
		return
	}
	names := make([]string, len(dr.Subsets))
	for i, s := range dr.Subsets {
		names[i] = s.Name
	}
	if !slices.Contains(names, subset) {
		r.errorf(path, "subset %q is not defined by DestinationRule %s/%s (defined: %s)%s",
			subset, dr.Namespace, dr.Name, listNames(names), didYouMean(subset, names))
	}
}

// portNumbers lists the port numbers of a service, for messages.
func portNumbers(svc *Service) []string {
	out := make([]string, len(svc.Ports))
	for i, p := range svc.Ports {
		out[i] = strconv.FormatUint(uint64(p.Number), 10)
	}
	return out
}
