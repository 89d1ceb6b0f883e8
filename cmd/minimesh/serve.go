package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/internal/logging"
	"github.com/minimesh/minimesh/runner"
)

// runServe implements `minimesh serve`.
func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir         = fs.String("config-dir", "", "directory of Istio YAML to serve (watched; sub-directories included)")
		xdsAddr     = fs.String("xds-address", "127.0.0.1:15010", "address of the xDS (ADS) gRPC server")
		insecureXDS = fs.Bool("insecure-xds", false, "serve xDS in plaintext, authenticating nobody (any client can obtain any workload's certificate)")
		caDir       = fs.String("ca-dir", defaultCADir(), "the CA's directory: minimesh's generated root, or Istio's plug-in files (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)")
		trustDomain = fs.String("trust-domain", "cluster.local", "trust domain of the SPIFFE identities spiffe://<trust-domain>/ns/<ns>/sa/<sa>")
		lifetime    = fs.Duration("cert-lifetime", 24*time.Hour, "lifetime of workload certificates (re-issued and pushed at 2/3 of it)")
		rootNS      = fs.String("root-namespace", "istio-system", "namespace whose PeerAuthentication without selector applies to the whole mesh")
		xdsNames    = fs.String("xds-server-names", "", "comma-separated extra DNS names in the xDS server certificate (the host proxies dial)")
		ns          = fs.String("default-namespace", "default", "namespace of objects without metadata.namespace, and of out-of-mesh proxies without NAMESPACE metadata")
		suffix      = fs.String("domain-suffix", "cluster.local", "cluster domain: short host \"a\" in namespace \"b\" means a.b.svc.<suffix>")
		holdOff     = fs.Duration("debounce", 20*time.Millisecond, "quiet time after a file change before rebuilding")
		maxDelay    = fs.Duration("debounce-max", 100*time.Millisecond, "longest time from a file change to the rebuild")
		metricsAddr = fs.String("metrics-address", "127.0.0.1:15014", "address of the Prometheus /metrics endpoint (empty: off)")
		debugAddr   = fs.String("debug-address", "127.0.0.1:15015", "address of the debug endpoints /debug/syncz, /debug/config_dump, /debug/pprof/ (empty: off; keep it on loopback)")
		level       = fs.String("log-level", "info", "debug, info, warn or error")
		healthAddr  = fs.String("health-address", "", "address of /healthz and /readyz for probes (empty: off; Kubernetes: 0.0.0.0:15021)")
	)
	kf := addKubeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *dir == "" && !kf.enabled():
		return errors.New("serve: --config-dir (a directory of Istio YAML) or --kubernetes is required")
	case *dir != "" && kf.enabled():
		return errors.New("serve: --config-dir and --kubernetes exclude each other: the mesh comes from one source")
	}
	log, err := logging.New(*level, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing useful to do on failure

	kubeCfg, err := kf.config()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cp, err := runner.Start(ctx, runner.Config{
		ConfigDir: *dir, XDSAddress: *xdsAddr, DefaultNamespace: *ns, DomainSuffix: *suffix,
		HoldOff: *holdOff, MaxDelay: *maxDelay, Registry: reg, Log: log,
		RootNamespace: *rootNS, CADir: *caDir, TrustDomain: *trustDomain, CertLifetime: *lifetime,
		InsecureXDS: *insecureXDS, XDSNames: splitList(*xdsNames), Cluster: kubeCfg,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *metricsAddr != "" {
		go serveMetrics(*metricsAddr, reg, log)
	}
	if *healthAddr != "" {
		go serveHealth(*healthAddr, log)
	}
	if *debugAddr != "" {
		stopDebug, err := serveDebug(*debugAddr, cp.DebugHandler(), log)
		if err != nil {
			cp.Stop()
			return fmt.Errorf("serve: %w", err)
		}
		defer stopDebug()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		cp.Stop()
		return nil
	case err := <-waitErr(cp):
		return err
	}
}

func waitErr(cp *runner.ControlPlane) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- cp.Wait() }()
	return ch
}

// serveMetrics serves Prometheus metrics until the process ends.
func serveMetrics(addr string, reg *prometheus.Registry, log *zap.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving metrics", zap.String("address", addr))
	if err := srv.ListenAndServe(); err != nil {
		log.Error("metrics server stopped", zap.Error(err))
	}
}

// serveHealth answers probes: /healthz (the process is up) and /readyz
// (the first mesh is loaded and xDS is served, which is true once serve
// starts this).
func serveHealth(addr string, log *zap.Logger) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving health probes", zap.String("address", addr))
	if err := srv.ListenAndServe(); err != nil {
		log.Error("health server stopped", zap.Error(err))
	}
}

// serveDebug serves the debug endpoints until the returned function is
// called. It fails at once if the address is taken, so that proxy-status
// never reads another instance's state.
func serveDebug(addr string, h http.Handler, log *zap.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug address %s: %w (--debug-address \"\" turns the debug endpoints off)", addr, err)
	}
	if ap, err := netip.ParseAddrPort(lis.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		log.Warn("debug endpoints are reachable beyond this machine: they show every proxy's configuration "+
			"(private keys redacted) and serve pprof; prefer a loopback --debug-address", zap.String("address", addr))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving debug endpoints", zap.String("address", lis.Addr().String()))
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server stopped", zap.Error(err))
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// defaultCADir is where serve keeps its CA unless told otherwise.
func defaultCADir() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "minimesh", "ca")
	}
	return "minimesh-ca"
}

// splitList splits a comma-separated flag value, dropping empty items.
// kubernetesValueFlags are serve's flags for Kubernetes mode besides
// --kubernetes itself (serve_kube.go). A build without Kubernetes mode
// accepts them too, and says the mode is not there (nokube.go).
var kubernetesValueFlags = []string{"kubeconfig", "namespace-filter", "ca-secret", "sts-address", "webhook-address",
	"proxy-image", "init-image"}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
