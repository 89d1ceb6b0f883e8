package bootstrap

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// nodeID is a proxy's node ID, "<workload>.<namespace>", split into its parts.
type nodeID struct {
	ID        string // the whole ID, as the proxy sends it
	Workload  string // the Pod or WorkloadEntry name
	Namespace string
}

// parseNodeID splits a node ID at its last dot: namespaces never contain a
// dot, workload names may.
func parseNodeID(id string) (nodeID, error) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return nodeID{}, fmt.Errorf("node ID %q: want <workload>.<namespace>, e.g. my-app-v1.default", id)
	}
	n := nodeID{ID: id, Workload: id[:i], Namespace: id[i+1:]}
	if !isDNSSubdomain(n.Workload) {
		return nodeID{}, fmt.Errorf("node ID %q: workload %q is not a valid name (lowercase letters, digits, '-' and '.')", id, n.Workload)
	}
	if !isDNSLabel(n.Namespace) {
		return nodeID{}, fmt.Errorf("node ID %q: namespace %q is not a valid name (lowercase letters, digits and '-')", id, n.Namespace)
	}
	return n, nil
}

// hostPort is a parsed "host:port" address.
type hostPort struct {
	Host string // an IP address (without brackets) or a DNS name
	Port uint32
}

// IsIP reports whether the host is an IP address rather than a DNS name.
func (a hostPort) IsIP() bool {
	_, err := netip.ParseAddr(a.Host)
	return err == nil
}

// String renders the address as "host:port", bracketing IPv6 hosts.
func (a hostPort) String() string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// parseAddress parses "host:port", where host is an IP address or a DNS name.
// what names the address in errors ("xDS address", "admin address").
func parseAddress(what, addr string) (hostPort, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, fmt.Errorf("%s %q: want host:port: %w", what, addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return hostPort{}, fmt.Errorf("%s %q: port %q is not a number from 1 to 65535", what, addr, portText)
	}
	a := hostPort{Host: host, Port: uint32(port)}
	if !a.IsIP() && !isHostname(host) {
		return hostPort{}, fmt.Errorf("%s %q: host %q is neither an IP address nor a DNS name", what, addr, host)
	}
	return a, nil
}

// parseIPAddress parses "ip:port": addresses Envoy listens on must be IPs.
func parseIPAddress(what, addr string) (hostPort, error) {
	a, err := parseAddress(what, addr)
	if err != nil {
		return hostPort{}, err
	}
	if !a.IsIP() {
		return hostPort{}, fmt.Errorf("%s %q: host %q must be an IP address", what, addr, a.Host)
	}
	return a, nil
}

// isDNSLabel reports whether s is an RFC 1123 label, as Kubernetes requires
// of namespace names: at most 63 lowercase letters, digits and '-', starting
// and ending with a letter or digit.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// isDNSSubdomain reports whether s is an RFC 1123 subdomain, as Kubernetes
// requires of Pod and WorkloadEntry names: dot-separated labels, at most 253
// characters in all.
func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isDNSLabel(label) {
			return false
		}
	}
	return true
}

// isHostname reports whether s can be resolved as a host name. It is more
// lenient than isDNSSubdomain: upper case and '_' appear in real names (Docker
// Compose service names, for one). A last label of only digits is refused so
// that a mistyped IP address ("10.0.0.300") is not taken for a name.
func isHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false
	}
	for _, label := range labels {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !isLowerAlnum(c) && !('A' <= c && c <= 'Z') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// isLowerAlnum reports whether c is a lowercase ASCII letter or a digit.
func isLowerAlnum(c rune) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}
