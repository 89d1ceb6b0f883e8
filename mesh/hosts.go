package mesh

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// DefaultDomainSuffix is the cluster domain used when Options leave it empty.
const DefaultDomainSuffix = "cluster.local"

// ResolveHost makes a host fully qualified the way Istio does for
// VirtualService and DestinationRule hosts: a name without dots is short and
// becomes <name>.<namespace>.svc.<suffix>; anything with a dot is kept as is,
// and so are "*" and wildcards such as "*.example.com". An empty
// domainSuffix means DefaultDomainSuffix.
func ResolveHost(host, namespace, domainSuffix string) string {
	if host == "" || strings.Contains(host, ".") || strings.HasPrefix(host, "*") {
		return host
	}
	if domainSuffix == "" {
		domainSuffix = DefaultDomainSuffix
	}
	return host + "." + namespace + ".svc." + domainSuffix
}

// isShortName reports whether host is a short name ("my-app") that
// ResolveHost would expand.
func isShortName(host string) bool {
	return host != "" && ResolveHost(host, "ns", "suffix") != host
}

// dnsLabel is one label of a DNS name (RFC 1123; upper case is accepted
// because DNS is case-insensitive and Istio accepts it too).
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$`)

// allDigits matches a label made only of digits.
var allDigits = regexp.MustCompile(`^[0-9]+$`)

// isDNSName reports whether s is a valid DNS name such as "db.example.com".
// A trailing dot is not accepted, nor an all-numeric last label, so that a
// mistyped IP address ("10.0.0.300") is not taken for a name.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, label := range labels {
		if !dnsLabel.MatchString(label) {
			return false
		}
	}
	return !allDigits.MatchString(labels[len(labels)-1])
}

// isIP reports whether s is an IPv4 or IPv6 address.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isWildcard reports whether host is "*" or starts with "*.".
func isWildcard(host string) bool {
	return host == "*" || strings.HasPrefix(host, "*.")
}

// isValidHost reports whether host is a DNS name, or a wildcard "*" or
// "*.<DNS name>".
func isValidHost(host string) bool {
	switch {
	case host == "*":
		return true
	case strings.HasPrefix(host, "*."):
		return isDNSName(host[2:])
	default:
		return isDNSName(host)
	}
}

// hostMatches reports whether pattern (a host or a wildcard) covers host:
// "*" covers everything, "*.example.com" covers "a.example.com" and
// "a.b.example.com" but not "example.com".
func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:])
	default:
		return pattern == host
	}
}

// maxListed is how many names a message lists before saying "and N more".
const maxListed = 5

// listNames renders sorted names for a message: "a, b, c", or
// "a, b, c, d, e and 3 more", or "none".
func listNames(names []string) string {
	switch {
	case len(names) == 0:
		return "none"
	case len(names) <= maxListed:
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListed], ", ") + " and " + strconv.Itoa(len(names)-maxListed) + " more"
}
