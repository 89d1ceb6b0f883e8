package iptables

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.rules from the current output")

// injected is the configuration `minimesh inject` gives the init container.
var injected = Config{
	ProxyUID:            1337,
	InboundPort:         15006,
	OutboundPort:        15001,
	ExcludeInboundPorts: []uint16{15021, 15090},
}

// withExclusions adds outbound exclusions of both families.
var withExclusions = Config{
	ProxyUID:             1337,
	InboundPort:          15006,
	OutboundPort:         15001,
	ExcludeInboundPorts:  []uint16{15021, 15090, 22},
	ExcludeOutboundPorts: []uint16{5432},
	ExcludeOutboundCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00::1/64")},
}

// TestRulesGolden compares the rendered rules with testdata/*.rules. Run
// `go test ./inject/iptables -update` to accept a change, then review it.
func TestRulesGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		c    Config
		f    Family
	}{
		{"injected-ipv4.rules", injected, IPv4},
		{"injected-ipv6.rules", injected, IPv6},
		{"exclusions-ipv4.rules", withExclusions, IPv4},
		{"exclusions-ipv6.rules", withExclusions, IPv6},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Rules(tc.c, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs (-want +got); run with -update to accept:\n%s", path, diff)
			}
		})
	}
}

func TestRulesRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		c    Config
		want string
	}{
		"root proxy":      {Config{InboundPort: 15006, OutboundPort: 15001}, "uid 0"},
		"no inbound":      {Config{ProxyUID: 1337, OutboundPort: 15001}, "inbound port"},
		"no outbound":     {Config{ProxyUID: 1337, InboundPort: 15006}, "outbound port"},
		"same port":       {Config{ProxyUID: 1337, InboundPort: 15001, OutboundPort: 15001}, "both 15001"},
		"excluded itself": {Config{ProxyUID: 1337, InboundPort: 15006, OutboundPort: 15001, ExcludeInboundPorts: []uint16{15006}}, "also excluded"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Rules(tc.c, IPv4)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// fakeTables records what Install runs and answers iptables-save with what
// was restored so far, per family.
type fakeTables struct {
	restored map[string]string // restore command -> its input
	calls    []string
}

func (f *fakeTables) run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	switch name {
	case "iptables-save":
		return []byte(f.restored["iptables-restore"]), nil
	case "ip6tables-save":
		return []byte(f.restored["ip6tables-restore"]), nil
	}
	f.restored[name] = string(stdin)
	return nil, nil
}

func TestInstallIsIdempotent(t *testing.T) {
	tables := &fakeTables{restored: map[string]string{}}
	ctx := context.Background()
	got, err := Install(ctx, injected, []Family{IPv4, IPv6}, tables.run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Installed{IPv4: true, IPv6: true}, got); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	want4, _ := Rules(injected, IPv4)
	if tables.restored["iptables-restore"] != want4 {
		t.Errorf("iptables-restore got:\n%s\nwant:\n%s", tables.restored["iptables-restore"], want4)
	}
	wantCalls := []string{"iptables-save -t nat", "iptables-restore --noflush", "ip6tables-save -t nat", "ip6tables-restore --noflush"}
	if diff := cmp.Diff(wantCalls, tables.calls); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}

	tables.calls = nil
	got, err = Install(ctx, injected, []Family{IPv4, IPv6}, tables.run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Installed{IPv4: false, IPv6: false}, got); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"iptables-save -t nat", "ip6tables-save -t nat"}, tables.calls); diff != "" {
		t.Errorf("second run must only read the tables (-want +got):\n%s", diff)
	}
}
