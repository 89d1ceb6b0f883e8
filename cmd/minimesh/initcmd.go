package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/minimesh/minimesh/inject/iptables"
)

// runInitIPTables implements `minimesh init-iptables`, which the injected
// init container runs: it installs the iptables rules that send the pod's
// TCP traffic through Envoy. --dry-run prints the rules instead.
func runInitIPTables(ctx context.Context, args []string, stdout io.Writer) error {
	c, dryRun, err := parseInitIPTablesFlags(args)
	if err != nil {
		return err
	}
	families, err := iptables.Families()
	if err != nil {
		return fmt.Errorf("init-iptables: %w", err)
	}
	if dryRun {
		for _, f := range families {
			rules, err := iptables.Rules(c, f)
			if err != nil {
				return fmt.Errorf("init-iptables: %w", err)
			}
			fmt.Fprint(stdout, rules)
		}
		return nil
	}
	installed, err := iptables.Install(ctx, c, families, iptables.ExecRunner)
	if err != nil {
		return fmt.Errorf("init-iptables: %w", err)
	}
	for _, f := range families {
		if installed[f] {
			fmt.Fprintf(stdout, "%s: transparent capture installed\n", f)
		} else {
			fmt.Fprintf(stdout, "%s: the rules were already there; left as they are\n", f)
		}
	}
	return nil
}

// parseInitIPTablesFlags parses the command line into the redirect's
// configuration.
func parseInitIPTablesFlags(args []string) (c iptables.Config, dryRun bool, err error) {
	fs := flag.NewFlagSet("init-iptables", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: minimesh init-iptables [--proxy-uid 1337] [--inbound-port 15006] [--outbound-port 15001] [--exclude-inbound-ports 15021,15090] [--dry-run]")
		fmt.Fprintln(fs.Output(), "Redirects the pod's TCP traffic to Envoy with iptables-restore (and ip6tables-restore when the pod has ::1). Needs NET_ADMIN.")
		fs.PrintDefaults()
	}
	uid := fs.Uint("proxy-uid", 1337, "the `UID` Envoy runs as; its traffic is not redirected")
	inbound := fs.Uint("inbound-port", 15006, "Envoy's inbound capture `PORT`")
	outbound := fs.Uint("outbound-port", 15001, "Envoy's outbound capture `PORT`")
	excludeIn := fs.String("exclude-inbound-ports", "", "comma-separated `PORTS` that inbound connections reach directly")
	excludeOut := fs.String("exclude-outbound-ports", "", "comma-separated `PORTS` that outbound connections reach directly")
	excludeCIDRs := fs.String("exclude-outbound-cidrs", "", "comma-separated `CIDRS` that outbound connections reach directly")
	fs.BoolVar(&dryRun, "dry-run", false, "print the iptables-restore input instead of installing it")
	if err := fs.Parse(args); err != nil {
		return c, false, err
	}
	if fs.NArg() > 0 {
		return c, false, fmt.Errorf("init-iptables: unexpected argument %q", fs.Arg(0))
	}
	c.ProxyUID = uint32(*uid)
	if uint(c.ProxyUID) != *uid {
		return c, false, fmt.Errorf("init-iptables: --proxy-uid %d is not a user ID", *uid)
	}
	if c.InboundPort, err = portFlag("--inbound-port", *inbound); err != nil {
		return c, false, err
	}
	if c.OutboundPort, err = portFlag("--outbound-port", *outbound); err != nil {
		return c, false, err
	}
	if c.ExcludeInboundPorts, err = portList("--exclude-inbound-ports", *excludeIn); err != nil {
		return c, false, err
	}
	if c.ExcludeOutboundPorts, err = portList("--exclude-outbound-ports", *excludeOut); err != nil {
		return c, false, err
	}
	if c.ExcludeOutboundCIDRs, err = cidrList("--exclude-outbound-cidrs", *excludeCIDRs); err != nil {
		return c, false, err
	}
	if err := c.Check(); err != nil {
		return c, false, fmt.Errorf("init-iptables: %w", err)
	}
	return c, dryRun, nil
}

// portFlag checks a port number.
func portFlag(flagName string, port uint) (uint16, error) {
	if port == 0 || port > 65535 {
		return 0, fmt.Errorf("init-iptables: %s %d is not a port from 1 to 65535", flagName, port)
	}
	return uint16(port), nil
}

// portList parses "15021,15090".
func portList(flagName, list string) ([]uint16, error) {
	var ports []uint16
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		n, err := strconv.ParseUint(item, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("init-iptables: %s: %q is not a port from 1 to 65535", flagName, item)
		}
		ports = append(ports, uint16(n))
	}
	return ports, nil
}

// cidrList parses "10.96.0.0/12,fd00::/64".
func cidrList(flagName, list string) ([]netip.Prefix, error) {
	var cidrs []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("init-iptables: %s: %q is not a CIDR such as 10.96.0.0/12", flagName, item)
		}
		cidrs = append(cidrs, p)
	}
	return cidrs, nil
}
