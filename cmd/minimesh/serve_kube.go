//go:build kubernetes

package main

import (
	"flag"
	"os"

	"github.com/minimesh/minimesh/inject"
	"github.com/minimesh/minimesh/kubesource"
	"github.com/minimesh/minimesh/runner"
	"github.com/minimesh/minimesh/watcher/kube"
)

// Kubernetes mode is in a build with -tags kubernetes (the container
// image's): serve --kubernetes, and inject.

// kubeFlags are serve's Kubernetes mode flags.
type kubeFlags struct {
	mode                                    *bool
	kubeconfig, nsFilter, caSecret, stsAddr *string
	webhookAddr, proxyImage, initImage      *string
}

func addKubeFlags(fs *flag.FlagSet) *kubeFlags {
	return &kubeFlags{
		mode:        fs.Bool("kubernetes", false, "read the mesh from a Kubernetes cluster (Services, EndpointSlices, Pods, Istio kinds) instead of --config-dir; the CA lives in a Secret shared by replicas"),
		kubeconfig:  fs.String("kubeconfig", "", "kubeconfig file for --kubernetes (empty: in-cluster configuration)"),
		nsFilter:    fs.String("namespace-filter", "", "comma-separated namespaces to watch with --kubernetes (empty: all); include the root namespace"),
		caSecret:    fs.String("ca-secret", kubesource.DefaultCASecret, "Secret (in minimesh's namespace, $POD_NAMESPACE) holding the CA with --kubernetes; created by the leader if missing"),
		stsAddr:     fs.String("sts-address", "", "address of the token exchange (STS) that injected sidecars call with --kubernetes (https; e.g. 0.0.0.0:15014, where injected sidecars call it)"),
		webhookAddr: fs.String("webhook-address", "", "address of the sidecar injection webhook with --kubernetes (https; e.g. 0.0.0.0:15017)"),
		proxyImage:  fs.String("proxy-image", "", "Envoy image the webhook injects (default "+inject.DefaultProxyImage+")"),
		initImage:   fs.String("init-image", "", "minimesh image of the injected init container (default "+inject.DefaultInitImage+")"),
	}
}

func (k *kubeFlags) enabled() bool { return *k.mode }

// config is the Kubernetes mode's configuration, nil without --kubernetes.
func (k *kubeFlags) config() (runner.ClusterConfig, error) {
	if !*k.mode {
		return nil, nil
	}
	rc, err := kube.RESTConfig(*k.kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubesource.Config{
		RESTConfig: rc, Namespaces: splitList(*k.nsFilter),
		Namespace: os.Getenv("POD_NAMESPACE"), PodName: os.Getenv("POD_NAME"),
		CASecret: *k.caSecret, STSAddress: *k.stsAddr, WebhookAddress: *k.webhookAddr,
		Inject: inject.Config{ProxyImage: *k.proxyImage, InitImage: *k.initImage},
	}, nil
}
