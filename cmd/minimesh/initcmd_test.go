package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitIPTablesDryRun: the flags that `minimesh inject` gives the init
// container print the IPv4 rules of the iptables package's golden file.
func TestInitIPTablesDryRun(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "inject", "iptables", "testdata", "injected-ipv4.rules"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"--proxy-uid", "1337", "--inbound-port", "15006", "--outbound-port", "15001",
		"--exclude-inbound-ports", "15021,15090", "--dry-run"}
	if err := runInitIPTables(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), string(want)) {
		t.Errorf("dry run printed:\n%s\nwant it to start with:\n%s", out.String(), want)
	}
}

func TestInitIPTablesFlagErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"root proxy":    {[]string{"--proxy-uid", "0", "--dry-run"}, "uid 0"},
		"port too big":  {[]string{"--inbound-port", "70000", "--dry-run"}, "--inbound-port 70000"},
		"bad port list": {[]string{"--exclude-inbound-ports", "15021,http", "--dry-run"}, `"http" is not a port`},
		"bad CIDR":      {[]string{"--exclude-outbound-cidrs", "10.0.0.0", "--dry-run"}, `"10.0.0.0" is not a CIDR`},
		"same ports":    {[]string{"--inbound-port", "15001", "--dry-run"}, "both 15001"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runInitIPTables(context.Background(), tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
