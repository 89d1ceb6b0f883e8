package kube

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/minimesh/minimesh/watcher"
)

// Config configures a Watcher.
type Config struct {
	// RESTConfig reaches the API server; see RESTConfig.
	RESTConfig *rest.Config
	// Namespaces limits the watch to these namespaces; empty watches all of
	// them. Mesh-wide policies live in RootNamespace: list it too.
	Namespaces    []string
	DomainSuffix  string        // "cluster.local" if empty
	RootNamespace string        // mesh-wide policies live here; "istio-system" if empty
	HoldOff       time.Duration // quiet time after the last event before rebuilding (default 20 ms)
	MaxDelay      time.Duration // ceiling from the first event to the rebuild (default 100 ms)
	Log           *zap.Logger
	// Registry, when set, gets the minimesh_kube_config_errors_total counter.
	Registry prometheus.Registerer
	// Component names minimesh in the Events it writes ("minimesh" if empty).
	Component string
	// WritesStatus, when set, says whether this replica writes Events and
	// status conditions now (the leader does; the others only count and
	// log). nil: always.
	WritesStatus func() bool
}

// withDefaults returns cfg with its empty fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.HoldOff == 0 {
		cfg.HoldOff = watcher.DefaultHoldOff
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = watcher.DefaultMaxDelay
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Component == "" {
		cfg.Component = "minimesh"
	}
	return cfg
}

// RESTConfig returns the configuration to reach the API server: from the
// kubeconfig file at path, or, when path is empty, the in-cluster one (the
// pod's service account token and the KUBERNETES_SERVICE_* variables).
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster Kubernetes config (outside a cluster, pass a kubeconfig file): %w", err)
	}
	return cfg, nil
}
