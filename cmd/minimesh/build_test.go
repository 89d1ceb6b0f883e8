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

// demoOnly reports whether pkg belongs to the demo (cmd/minimesh-demo), not
// to the control plane: gRPC's xDS client, the demo's applications, the
// simulated Envoys and the test bed.
func demoOnly(pkg string) bool {
	for _, prefix := range []string{"google.golang.org/grpc/xds", "github.com/minimesh/minimesh/internal/demoapp",
		"github.com/minimesh/minimesh/internal/envoysim", "github.com/minimesh/minimesh/internal/testbed"} {
		if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
			return true
		}
	}
	return false
}

// TestServeBuild: minimesh, with or without -tags kubernetes, is the
// control plane and links nothing of the demo's (which is its own program,
// cmd/minimesh-demo); asked for the demo, it says where the demo is; and
// the binary serves a mesh from a directory to an Envoy.
func TestServeBuild(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, &out, &out); err == nil || !strings.Contains(err.Error(), "go run ./cmd/minimesh-demo") {
		t.Errorf("minimesh demo: %v; want a failure that says go run ./cmd/minimesh-demo", err)
	}
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
	goTool := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	for _, tags := range []string{"", "kubernetes"} {
		deps, err := exec.Command(goTool, "list", "-tags", tags, "-deps", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q: %v\n%s", tags, err, deps)
		}
		for _, pkg := range strings.Fields(string(deps)) {
			if demoOnly(pkg) {
				t.Errorf("minimesh built with -tags %q links %s, the demo's", tags, pkg)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "minimesh")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
			t.Fatalf("the server did not give a complete configuration: missing %v\nserver: %s", missing, stderr.String())
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
