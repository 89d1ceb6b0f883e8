//go:build kubernetes

package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minimesh/minimesh/kubesource"
)

// TestKubernetesFlags: serve's Kubernetes flags become the cluster source's
// configuration, and a kubeconfig that cannot be read is an error naming it.
// They are the flags a build without Kubernetes mode accepts in order to
// refuse them (kubernetesValueFlags).
func TestKubernetesFlags(t *testing.T) {
	defined := flag.NewFlagSet("serve", flag.ContinueOnError)
	addKubeFlags(defined)
	var names []string
	defined.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if want := append([]string{"kubernetes"}, kubernetesValueFlags...); !sameNames(names, want) {
		t.Errorf("Kubernetes mode's flags are %v; kubernetesValueFlags and --kubernetes are %v", names, want)
	}

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAMESPACE", "mesh-system")
	t.Setenv("POD_NAME", "minimesh-1")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	kf := addKubeFlags(fs)
	if err := fs.Parse([]string{"--kubernetes", "--kubeconfig", kubeconfig, "--namespace-filter", "a, b",
		"--ca-secret", "ca", "--sts-address", "127.0.0.1:1", "--webhook-address", "127.0.0.1:2",
		"--proxy-image", "envoy:x", "--init-image", "minimesh:y"}); err != nil {
		t.Fatal(err)
	}
	cc, err := kf.config()
	if err != nil {
		t.Fatal(err)
	}
	k, ok := cc.(kubesource.Config)
	if !ok {
		t.Fatalf("config is a %T, want kubesource.Config", cc)
	}
	if k.RESTConfig == nil || k.RESTConfig.Host != "https://127.0.0.1:6443" {
		t.Errorf("RESTConfig %+v, want the kubeconfig's server", k.RESTConfig)
	}
	if !slices.Equal(k.Namespaces, []string{"a", "b"}) || k.Namespace != "mesh-system" || k.PodName != "minimesh-1" ||
		k.CASecret != "ca" || k.STSAddress != "127.0.0.1:1" || k.WebhookAddress != "127.0.0.1:2" ||
		k.Inject.ProxyImage != "envoy:x" || k.Inject.InitImage != "minimesh:y" {
		t.Errorf("config %+v does not hold the flags", k)
	}

	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"serve", "--kubernetes", "--kubeconfig", missing}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("serve with a missing kubeconfig: %v; want an error naming %s", err, missing)
	}
}

// sameNames reports whether a and b hold the same names, in any order.
func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
