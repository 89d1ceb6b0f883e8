//go:build lean

package runner

// A lean build (go build -tags lean) has no Kubernetes mode: it links none
// of Kubernetes' client libraries, which a control plane fed from files has
// no use for, and which cost memory in every process that links them (their
// package initialization alone). These stand-ins keep the rest of the
// runner the same in both builds.

import (
	"context"
	"crypto/tls"
	"errors"

	"go.uber.org/zap"

	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/mesh"
)

// ErrNoKubernetes is what asking a lean build for Kubernetes mode returns.
var ErrNoKubernetes = errors.New("this minimesh was built without Kubernetes support (-tags lean); build it without that tag to use --kubernetes")

// KubernetesConfig has no settings in a lean build: there is no Kubernetes
// mode to configure.
type KubernetesConfig struct{}

// kubeSource never exists in a lean build.
type kubeSource struct {
	ca     *certs.CA
	tokens TokenReviewer
}

func startKubernetes(context.Context, Config) (*kubeSource, error) { return nil, ErrNoKubernetes }

func (k *kubeSource) serviceNames(string) []string { return nil }

func (k *kubeSource) Run(context.Context, func(*mesh.Snapshot)) error { return ErrNoKubernetes }

func (k *kubeSource) serveHTTPS(context.Context, *tls.Config, *zap.Logger) error {
	return ErrNoKubernetes
}
