package iptables

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// skipOrFail skips with how to get what is missing, or fails when the
// environment promises everything is there.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("MINIMESH_REQUIRE_KUBE") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf("SKIPPED: "+format, args...)
}

// netnsRunner runs commands inside the network namespace ns.
func netnsRunner(ns string) Runner {
	return func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
		return ExecRunner(ctx, stdin, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
}

// TestInstallInNetworkNamespace installs the rules for real, in a network
// namespace of its own, and checks that iptables-save prints back every
// rule exactly as rendered (so the golden files are in iptables' canonical
// form) and that a second run changes nothing.
func TestInstallInNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "creating a network namespace needs root")
	}
	for _, tool := range []string{"ip", "iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not found: apt-get install iptables iproute2", tool)
		}
	}
	ns := fmt.Sprintf("minimesh-iptables-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		skipOrFail(t, "ip netns add %s: %v: %s (needs CAP_SYS_ADMIN)", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ctx := context.Background()
	run := netnsRunner(ns)

	got, err := Install(ctx, withExclusions, []Family{IPv4, IPv6}, run)
	if err != nil {
		t.Fatal(err)
	}
	if !got[IPv4] || !got[IPv6] {
		t.Fatalf("first run installed %v, want both families", got)
	}
	saved := map[Family]string{}
	for _, f := range []Family{IPv4, IPv6} {
		save, _ := f.commands()
		out, err := run(ctx, nil, save, "-t", "nat")
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = string(out)
		rules, _ := Rules(withExclusions, f)
		for line := range strings.SplitSeq(rules, "\n") {
			if strings.HasPrefix(line, "-A ") && !strings.Contains(saved[f], line+"\n") {
				t.Errorf("%s: rule %q is not in iptables-save's output:\n%s", f, line, saved[f])
			}
		}
	}

	again, err := Install(ctx, withExclusions, []Family{IPv4, IPv6}, run)
	if err != nil {
		t.Fatal(err)
	}
	if again[IPv4] || again[IPv6] {
		t.Errorf("second run installed %v, want nothing", again)
	}
	for _, f := range []Family{IPv4, IPv6} {
		save, _ := f.commands()
		out, _ := run(ctx, nil, save, "-t", "nat")
		if n := strings.Count(string(out), "-A PREROUTING -p tcp -j "+InboundChain); n != 1 {
			t.Errorf("%s: %d jumps from PREROUTING after two runs, want 1", f, n)
		}
	}
}
