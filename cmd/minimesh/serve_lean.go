//go:build lean

package main

import (
	"flag"

	"github.com/minimesh/minimesh/runner"
)

// kubeFlags: a lean build has no Kubernetes mode. --kubernetes is still a
// flag, so that asking for it says why it is not there.
type kubeFlags struct{ mode *bool }

func addKubeFlags(fs *flag.FlagSet) *kubeFlags {
	return &kubeFlags{mode: fs.Bool("kubernetes", false, "not in this build: minimesh was built with -tags lean, without Kubernetes support")}
}

func (k *kubeFlags) enabled() bool { return *k.mode }

func (k *kubeFlags) config() (*runner.KubernetesConfig, error) {
	if *k.mode {
		return nil, runner.ErrNoKubernetes
	}
	return nil, nil
}
