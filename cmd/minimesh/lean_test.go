//go:build !lean

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/synth"
)

// kubernetesOnly reports whether pkg is linked only by a build with -tags
// kubernetes: Kubernetes' client libraries and minimesh's packages that
// use them (inject/iptables, the init container's, and kubeauth/account,
// the identity type the runner checks, are not).
func kubernetesOnly(pkg string) bool {
	for _, prefix := range []string{"k8s.io/client-go/", "k8s.io/api/", "k8s.io/apimachinery/", "istio.io/client-go/"} {
		if strings.HasPrefix(pkg, prefix) {
			return true
		}
	}
	switch pkg {
	case "github.com/minimesh/minimesh/watcher/kube", "github.com/minimesh/minimesh/kubeca",
		"github.com/minimesh/minimesh/kubeauth", "github.com/minimesh/minimesh/kubesource",
		"github.com/minimesh/minimesh/inject":
		return true
	}
	return false
}

// TestLeanBuild: `go build -tags lean` gives a control plane for files
// alone. It links none of Kubernetes' client libraries and none of the
// demo's (gRPC's xDS client, the simulated Envoys), even with -tags
// kubernetes, says so when asked for them, and serves a mesh from a
// directory to an Envoy.
func TestLeanBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
	goTool := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	deps, err := exec.Command(goTool, "list", "-tags", "lean,kubernetes", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags lean: %v\n%s", err, deps)
	}
	for _, pkg := range strings.Fields(string(deps)) {
		if kubernetesOnly(pkg) {
			t.Errorf("the lean build links %s", pkg)
		}
		for _, banned := range []string{"google.golang.org/grpc/xds",
			"github.com/minimesh/minimesh/internal/envoysim", "github.com/minimesh/minimesh/internal/testbed"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("the lean build links %s", pkg)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "minimesh")
	if out, err := exec.Command(goTool, "build", "-tags", "lean", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags lean: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		tag  string // the build the failure must point to
	}{
		{[]string{"serve", "--kubernetes"}, "-tags kubernetes"},
		{[]string{"inject", "-f", "-"}, "-tags kubernetes"},
		{[]string{"demo"}, "-tags lean"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a regression must not hang the test
		out, err := exec.CommandContext(ctx, bin, c.args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.tag) {
			t.Errorf("minimesh %s: %v, %q; want a failure that names %s", strings.Join(c.args, " "), err, out, c.tag)
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), synth.YAML(2, "default"), 0o644); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	var stderr lockedBuffer
	serve := exec.Command(bin, "serve", "--config-dir", dir, "--insecure-xds", "--ca-dir", t.TempDir(),
		"--xds-address", addr, "--metrics-address", "", "--debug-address", "", "--log-level", "warn")
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Kill()
		serve.Wait()
	}()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	envoy := envoysim.New(envoysim.Config{NodeID: synth.Workloads(synth.Options{Services: 2})[0].NodeID()})
	go func() {
		for ctx.Err() == nil {
			_ = envoy.Run(ctx, conn) // until the server listens
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for {
		if ok, _ := envoy.Complete(); ok {
			break
		}
		if ctx.Err() != nil {
			_, missing := envoy.Complete()
			t.Fatalf("the lean server did not give a complete configuration: missing %v\nserver: %s", missing, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := envoy.Problems(); len(p) > 0 {
		t.Errorf("the configuration has problems: %v", p)
	}
}

// lockedBuffer is a buffer a child process writes to while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
