package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/minimesh/minimesh/internal/testlog"

	"github.com/minimesh/minimesh/bootstrap"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/internal/demoapp"
	"github.com/minimesh/minimesh/runner"
)

// Mesh is the mTLS scenario (examples/mtls) running with xDS over TLS:
// every proxy authenticates with a certificate issued by the mesh CA.
type Mesh struct {
	*Canary
	CADir string
	CA    *certs.CA
}

// StartMTLS starts minimesh on a copy of examples/mtls with the
// PeerAuthentication set to mode, xDS over TLS, and the backends v1 and v2
// as proxyless gRPC servers with their workload certificates.
func StartMTLS(t testing.TB, mode string) *Mesh {
	t.Helper()
	dir := CopyDir(t, filepath.Join(ExamplesDir(), "mtls"))
	ports := map[string]int{"v1": FreePort(t), "v2": FreePort(t)}
	rewrite(t, filepath.Join(dir, "workloads.yaml"), map[string]string{
		"grpc: 50051": fmt.Sprintf("grpc: %d", ports["v1"]),
		"grpc: 50052": fmt.Sprintf("grpc: %d", ports["v2"]),
	})
	m := &Mesh{CADir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := runner.Start(ctx, runner.Config{
		ConfigDir: dir, XDSAddress: "127.0.0.1:0", CADir: m.CADir, Log: testlog.New(t).Named("minimesh"),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if m.CA, err = certs.LoadOrCreate(certs.Options{Dir: m.CADir}); err != nil {
		t.Fatal(err)
	}
	m.Canary = &Canary{XDSAddress: cp.Addr.String(), Dir: dir, CP: cp, Ports: ports, Backends: map[string]*demoapp.Backend{}}
	t.Cleanup(func() {
		for _, b := range m.Backends {
			b.Stop()
		}
		cp.Stop()
		cancel()
	})
	m.SetMode(t, mode)
	for _, v := range []string{"v1", "v2"} {
		b, err := demoapp.StartBackend(v, fmt.Sprintf("127.0.0.1:%d", ports[v]), m.Bootstrap(t, "my-app-"+v+".default", "my-app"))
		if err != nil {
			t.Fatal(err)
		}
		m.Backends[v] = b
	}
	return m
}

// Bootstrap issues a certificate for serviceAccount into a new directory
// and returns a gRPC bootstrap that uses it for xDS and for mTLS.
func (m *Mesh) Bootstrap(t testing.TB, nodeID, serviceAccount string) []byte {
	t.Helper()
	c, err := m.CA.Issue(certs.Identity{Namespace: "default", ServiceAccount: serviceAccount})
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(t.TempDir(), "certs")
	if err := certs.WriteFiles(certDir, c, m.CA.TrustBundlePEM()); err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.GRPC(bootstrap.GRPCOptions{NodeID: nodeID, XDSAddress: m.XDSAddress, CertDir: certDir, XDSTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var modeRE = regexp.MustCompile(`(?m)^(\s+mode: )\w+$`)

// SetMode rewrites the mesh-wide PeerAuthentication's mode, as a person
// would, and gives minimesh time to push it.
func (m *Mesh) SetMode(t testing.TB, mode string) {
	t.Helper()
	path := filepath.Join(m.Dir, "peer-authentication.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !modeRE.Match(data) {
		t.Fatalf("%s: no mode to set", path)
	}
	if err := os.WriteFile(path, modeRE.ReplaceAll(data, []byte("${1}"+mode)), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the debounce ceiling is 100 ms
}
