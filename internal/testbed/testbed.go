// Package testbed starts the canary scenario in-process on loopback for
// end-to-end tests: minimesh serving a copy of examples/canary, and the two
// versions of the application as proxyless gRPC servers configured by it.
package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/minimesh/minimesh/internal/testlog"

	"github.com/minimesh/minimesh/bootstrap"
	"github.com/minimesh/minimesh/internal/demoapp"
	"github.com/minimesh/minimesh/runner"
)

// Canary is a running canary scenario.
type Canary struct {
	XDSAddress string // plaintext xDS, "127.0.0.1:NNNNN"
	Dir        string // the config dir being served
	CP         *runner.ControlPlane
	Ports      map[string]int              // backend port by version, as in workloads.yaml
	Backends   map[string]*demoapp.Backend // by version (StartCanary only)
}

// ExamplesDir returns the repository's examples directory.
func ExamplesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples")
}

// CopyDir copies the YAML files of src into a new temporary directory.
func CopyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartCanary starts minimesh on a copy of examples/canary, with the
// backends' ports moved to free ones, and the backends v1 and v2.
func StartCanary(t testing.TB) *Canary {
	t.Helper()
	c := StartCanaryServer(t)
	for _, v := range []string{"v1", "v2"} {
		b, err := demoapp.StartBackend(v, fmt.Sprintf("127.0.0.1:%d", c.Ports[v]), c.GRPCBootstrap(t, "my-app-"+v+".default"))
		if err != nil {
			t.Fatal(err)
		}
		c.Backends[v] = b
	}
	return c
}

// StartCanaryServer starts only minimesh on a copy of examples/canary;
// nothing uses the workloads' node IDs yet.
func StartCanaryServer(t testing.TB) *Canary {
	t.Helper()
	dir := CopyDir(t, filepath.Join(ExamplesDir(), "canary"))
	ports := map[string]int{"v1": FreePort(t), "v2": FreePort(t)}
	rewrite(t, filepath.Join(dir, "workloads.yaml"), map[string]string{
		"grpc: 50051": fmt.Sprintf("grpc: %d", ports["v1"]),
		"grpc: 50052": fmt.Sprintf("grpc: %d", ports["v2"]),
	})

	ctx, cancel := context.WithCancel(context.Background())
	cp, err := runner.Start(ctx, runner.Config{
		ConfigDir: dir, XDSAddress: "127.0.0.1:0", Log: testlog.New(t).Named("minimesh"),
		InsecureXDS: true, CADir: t.TempDir(),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &Canary{XDSAddress: cp.Addr.String(), Dir: dir, CP: cp, Ports: ports, Backends: map[string]*demoapp.Backend{}}
	t.Cleanup(func() {
		for _, b := range c.Backends {
			b.Stop()
		}
		cp.Stop()
		cancel()
	})
	return c
}

// GRPCBootstrap returns a gRPC xDS bootstrap for a node of this control plane.
func (c *Canary) GRPCBootstrap(t testing.TB, nodeID string) []byte {
	t.Helper()
	b, err := bootstrap.GRPC(bootstrap.GRPCOptions{NodeID: nodeID, XDSAddress: c.XDSAddress})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var weightRE = regexp.MustCompile(`(?m)^(\s+)weight: \d+$`)

// SetWeights rewrites the VirtualService's two weights (v1 first) the way
// a person would: by editing the file in place.
func (c *Canary) SetWeights(t testing.TB, v1, v2 int) {
	t.Helper()
	path := filepath.Join(c.Dir, "virtual-service.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	out := weightRE.ReplaceAllStringFunc(string(data), func(m string) string {
		indent := m[:strings.Index(m, "weight")]
		w := v1
		if i == 1 {
			w = v2
		}
		i++
		return fmt.Sprintf("%sweight: %d", indent, w)
	})
	if i != 2 {
		t.Fatalf("%s: found %d weights, want 2", path, i)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces strings in a file; each must be present.
func rewrite(t testing.TB, path string, repl map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for old, new := range repl {
		if !strings.Contains(s, old) {
			t.Fatalf("%s: %q not found", path, old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
