//go:build !kubernetes

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

	"sigs.k8s.io/yaml"
)

// TestKubernetesBuild: the default build serves files and links none of Kubernetes' client libraries; asking it for
// Kubernetes mode says which build has it. That build (-tags kubernetes)
// is tested here too, so that `go test ./...` covers both: its own tests
// (the Kubernetes flags, inject) run in a child `go test`.
func TestKubernetesBuild(t *testing.T) {
	// The shipped Deployment's command line, all its flags, is told which
	// build has Kubernetes mode: not that a flag is unknown.
	for _, args := range [][]string{{"serve", "--kubernetes"}, {"inject", "-f", "-"}, manifestArgs(t)} {
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

// manifestArgs are the arguments of minimesh's container in
// examples/kubernetes/server.yaml.
func manifestArgs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "kubernetes", "server.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var d struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name string
							Args []string
						}
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("server.yaml: %v", err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if d.Kind == "Deployment" && c.Name == "minimesh" {
				return c.Args
			}
		}
	}
	t.Fatal("server.yaml has no Deployment with a minimesh container")
	return nil
}

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
