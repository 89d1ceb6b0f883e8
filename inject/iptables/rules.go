// Package iptables renders and installs the packet redirection that makes a
// pod's Envoy sidecar transparent: every TCP connection into the pod goes
// to Envoy's inbound capture port, every TCP connection out of it to the
// outbound capture port, except Envoy's own traffic.
//
// Rules renders the rules as an iptables-restore file for the nat table (a
// pure function, golden-tested); Install feeds that file to
// iptables-restore, and to ip6tables-restore when the pod has IPv6. `minimesh
// init-iptables` runs Install in the injected init container. This package
// knows nothing about Kubernetes, Envoy's configuration or the mesh.
package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Chain names. They appear in `iptables-save` on every injected pod's node,
// so they are stable.
const (
	// InboundChain decides which inbound connections Envoy captures.
	InboundChain = "MINIMESH_INBOUND"
	// InboundRedirectChain sends a connection to the inbound capture port.
	InboundRedirectChain = "MINIMESH_IN_REDIRECT"
	// OutputChain decides which outbound connections Envoy captures.
	OutputChain = "MINIMESH_OUTPUT"
	// OutboundRedirectChain sends a connection to the outbound capture port.
	OutboundRedirectChain = "MINIMESH_REDIRECT"
)

// Config is what the redirection needs to know about the proxy.
type Config struct {
	// ProxyUID is the user Envoy runs as. Its connections are never
	// captured, or Envoy would loop to itself.
	ProxyUID uint32
	// InboundPort is Envoy's inbound capture listener (15006).
	InboundPort uint16
	// OutboundPort is Envoy's outbound capture listener (15001).
	OutboundPort uint16
	// ExcludeInboundPorts reach the pod directly: the sidecar's own health
	// and metrics ports, which kubelet and Prometheus call.
	ExcludeInboundPorts []uint16
	// ExcludeOutboundPorts and ExcludeOutboundCIDRs leave the pod directly.
	ExcludeOutboundPorts []uint16
	ExcludeOutboundCIDRs []netip.Prefix
}

// Family is an IP version; each has its own iptables.
type Family int

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String names the family as the restore command does.
func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// loopback is the address apps and Envoy use to reach the pod itself.
func (f Family) loopback() netip.Prefix {
	if f == IPv6 {
		return netip.MustParsePrefix("::1/128")
	}
	return netip.MustParsePrefix("127.0.0.1/32")
}

// inboundPassthroughSource is the source address Envoy binds when it hands
// an inbound connection on to the app. Those connections must reach the
// app untouched.
func (f Family) inboundPassthroughSource() netip.Prefix {
	if f == IPv6 {
		return netip.MustParsePrefix("::6/128")
	}
	return netip.MustParsePrefix("127.0.0.6/32")
}

// Check refuses a configuration that would capture nothing or loop.
func (c Config) Check() error {
	switch {
	case c.ProxyUID == 0:
		return fmt.Errorf("proxy uid 0: Envoy must run as its own non-root user, whose traffic is not captured")
	case c.InboundPort == 0:
		return fmt.Errorf("inbound port: want Envoy's inbound capture port, e.g. 15006")
	case c.OutboundPort == 0:
		return fmt.Errorf("outbound port: want Envoy's outbound capture port, e.g. 15001")
	case c.InboundPort == c.OutboundPort:
		return fmt.Errorf("inbound and outbound ports are both %d: Envoy needs one listener for each direction", c.InboundPort)
	case slices.Contains(c.ExcludeInboundPorts, c.InboundPort):
		return fmt.Errorf("inbound port %d is also excluded from capture", c.InboundPort)
	}
	return nil
}

// Rules renders the nat table rules for one IP family, in the canonical
// form `iptables-save` prints them, as a file for `iptables-restore
// --noflush`: it adds four chains and one jump from each of PREROUTING and
// OUTPUT, and leaves every other rule alone.
//
// Inbound (PREROUTING, connections arriving from other pods): TCP goes to
// InboundPort except to the excluded ports.
//
// Outbound (OUTPUT, connections the pod opens), in order:
//   - Envoy handing an inbound connection to the app (source 127.0.0.6) is
//     left alone;
//   - Envoy calling its own pod's address (not 127.0.0.1) goes through the
//     inbound capture port, so a workload calling itself through a Service
//     still gets inbound policy;
//   - other loopback traffic, the app's or Envoy's, is left alone;
//   - Envoy's own connections (ProxyUID) are left alone;
//   - excluded destinations are left alone;
//   - everything else goes to OutboundPort.
func Rules(c Config, f Family) (string, error) {
	if err := c.Check(); err != nil {
		return "", err
	}
	uid := strconv.FormatUint(uint64(c.ProxyUID), 10)
	loopback := f.loopback().String()
	var b strings.Builder
	fmt.Fprintf(&b, "# Transparent capture for the minimesh sidecar (%s), written by minimesh init-iptables.\n", f)
	b.WriteString("*nat\n")
	for _, chain := range []string{InboundChain, InboundRedirectChain, OutputChain, OutboundRedirectChain} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", chain)
	}
	rule := func(format string, args ...any) { fmt.Fprintf(&b, "-A "+format+"\n", args...) }

	rule("PREROUTING -p tcp -j %s", InboundChain)
	rule("OUTPUT -p tcp -j %s", OutputChain)
	rule("%s -p tcp -j REDIRECT --to-ports %d", InboundRedirectChain, c.InboundPort)
	rule("%s -p tcp -j REDIRECT --to-ports %d", OutboundRedirectChain, c.OutboundPort)

	for _, port := range c.ExcludeInboundPorts {
		rule("%s -p tcp -m tcp --dport %d -j RETURN", InboundChain, port)
	}
	rule("%s -p tcp -j %s", InboundChain, InboundRedirectChain)

	rule("%s -s %s -o lo -j RETURN", OutputChain, f.inboundPassthroughSource())
	rule("%s ! -d %s -o lo -m owner --uid-owner %s -j %s", OutputChain, loopback, uid, InboundRedirectChain)
	rule("%s -o lo -j RETURN", OutputChain)
	rule("%s -m owner --uid-owner %s -j RETURN", OutputChain, uid)
	for _, cidr := range c.ExcludeOutboundCIDRs {
		if (f == IPv6) == cidr.Addr().Is6() {
			rule("%s -d %s -j RETURN", OutputChain, cidr.Masked())
		}
	}
	for _, port := range c.ExcludeOutboundPorts {
		rule("%s -p tcp -m tcp --dport %d -j RETURN", OutputChain, port)
	}
	rule("%s -j %s", OutputChain, OutboundRedirectChain)
	b.WriteString("COMMIT\n")
	return b.String(), nil
}
