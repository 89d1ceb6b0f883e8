package iptables

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Runner runs a command with stdin and returns what it printed to
// standard output. ExecRunner runs real commands; tests run them in a
// network namespace.
type Runner func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)

// ExecRunner runs the command on this machine. Its error carries the
// command's standard error, which is where iptables explains itself.
func ExecRunner(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// commands are the save and restore tools of a family.
func (f Family) commands() (save, restore string) {
	if f == IPv6 {
		return "ip6tables-save", "ip6tables-restore"
	}
	return "iptables-save", "iptables-restore"
}

// Installed tells, for each family, whether Install added the rules or
// found them already there.
type Installed map[Family]bool

// Install adds the rules of each family to the nat table, leaving other
// rules alone. It is safe to run again (an init container is re-run when it
// fails): a family whose chains already exist is left as it is, which is
// right because iptables-restore commits a table all at once, so the
// chains are either all there or not at all.
func Install(ctx context.Context, c Config, families []Family, run Runner) (Installed, error) {
	done := Installed{}
	for _, f := range families {
		rules, err := Rules(c, f)
		if err != nil {
			return done, err
		}
		save, restore := f.commands()
		current, err := run(ctx, nil, save, "-t", "nat")
		if err != nil {
			return done, fmt.Errorf("reading the %s nat table: %w", f, err)
		}
		if hasChain(current, OutputChain) {
			done[f] = false
			continue
		}
		if _, err := run(ctx, []byte(rules), restore, "--noflush"); err != nil {
			return done, fmt.Errorf("installing the %s rules: %w", f, err)
		}
		done[f] = true
	}
	return done, nil
}

// hasChain reports whether iptables-save output declares chain.
func hasChain(save []byte, chain string) bool {
	for line := range strings.SplitSeq(string(save), "\n") {
		if strings.HasPrefix(line, ":"+chain+" ") {
			return true
		}
	}
	return false
}

// Families returns the families to capture in this network namespace:
// IPv4 always, IPv6 when the loopback interface has ::1 (a pod without
// IPv6 may have no ip6tables nat table at all).
func Families() ([]Family, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing the pod's addresses: %w", err)
	}
	families := []Family{IPv4}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.Equal(net.IPv6loopback) {
			families = append(families, IPv6)
			break
		}
	}
	return families, nil
}
