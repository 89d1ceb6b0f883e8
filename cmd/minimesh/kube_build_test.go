//go:build !kubernetes && !lean

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubernetesBuild: the default build serves files and runs the demo,
// and links none of Kubernetes' client libraries; asking it for
// Kubernetes mode says which build has it. That build (-tags kubernetes)
// is tested here too, so that `go test ./...` covers both: its own tests
// (the Kubernetes flags, inject) run in a child `go test`.
func TestKubernetesBuild(t *testing.T) {
	for _, args := range [][]string{{"serve", "--kubernetes"}, {"inject", "-f", "-"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "-tags kubernetes") {
			t.Errorf("minimesh %s: %v; want a failure that names -tags kubernetes", strings.Join(args, " "), err)
		}
	}
	if testing.Short() {
		t.Skip("the default build's dependencies and the Kubernetes build's tests are checked without -short")
	}
	goTool := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	deps, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, deps)
	}
	for _, pkg := range strings.Fields(string(deps)) {
		if kubernetesOnly(pkg) {
			t.Errorf("the default build links %s", pkg)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a cold build of client-go takes minutes
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "test", "-tags", "kubernetes", "-count=1", "-v",
		"-run", "^(TestKubernetesFlags|TestRunInject|TestRunInjectErrors)$", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go test -tags kubernetes: %v\n%s", err, out)
	}
	for _, name := range []string{"TestKubernetesFlags", "TestRunInject", "TestRunInjectErrors"} {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("go test -tags kubernetes did not pass %s:\n%s", name, out)
		}
	}
}
