//go:build !kubernetes

package main

import (
	"errors"
	"flag"
	"io"

	"github.com/minimesh/minimesh/runner"
)

// Without -tags kubernetes, minimesh is the control plane for files: it
// links none of Kubernetes' client libraries, which are most
// of a binary that has them and which every process of it maps into memory
// at start (docs/performance.md). serve --kubernetes and inject are in the
// build with -tags kubernetes, as the container image is built.
var errNoKubernetes = errors.New("not in this build: Kubernetes mode (serve --kubernetes, inject) is not in this minimesh; " +
	"build it with `go build -tags kubernetes ./cmd/minimesh`, as the container image is; this one serves files (--config-dir)")

// kubeFlags: the Kubernetes mode's flags are still flags, so that a
// command line for Kubernetes mode (examples/kubernetes/server.yaml passes
// several) is told why the mode is not there, not that a flag is unknown.
type kubeFlags struct{ mode *bool }

func addKubeFlags(fs *flag.FlagSet) *kubeFlags {
	const help = "not in this build: Kubernetes mode is built with -tags kubernetes"
	k := &kubeFlags{mode: fs.Bool("kubernetes", false, help)}
	for _, name := range kubernetesValueFlags {
		fs.String(name, "", help)
	}
	return k
}

func (k *kubeFlags) enabled() bool { return *k.mode }

func (k *kubeFlags) config() (runner.ClusterConfig, error) {
	if *k.mode {
		return nil, errNoKubernetes
	}
	return nil, nil
}

func runInject([]string, io.Reader, io.Writer) error { return errNoKubernetes }
