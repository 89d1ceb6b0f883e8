package runner

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/translator"
	"github.com/minimesh/minimesh/watcher/file"
	"github.com/minimesh/minimesh/xds"
)

// Config is everything `minimesh serve` needs.
type Config struct {
	ConfigDir        string
	XDSAddress       string // "127.0.0.1:15010"; port 0 picks a free port
	DefaultNamespace string
	DomainSuffix     string
	HoldOff          time.Duration // debounce hold-off (0: default)
	MaxDelay         time.Duration // debounce ceiling (0: default)
	Registry         prometheus.Registerer
	Log              *zap.Logger

	// RootNamespace holds mesh-wide policies ("istio-system").
	RootNamespace string
	// CA: where it lives and what it issues. CADir "" means no CA: no
	// workload certificates and no TLS for xDS (tests of plain routing).
	CADir        string
	TrustDomain  string
	CertLifetime time.Duration
	// InsecureXDS serves xDS in plaintext: nothing is authenticated.
	InsecureXDS bool
	// XDSNames are extra DNS names for the xDS server's certificate (the
	// host proxies use to reach it); "localhost" and the host name are
	// always included.
	XDSNames []string
	// Cluster, when set, reads the mesh from a cluster instead of
	// ConfigDir, with the CA the cluster keeps (CADir is not used), and
	// accepts the tokens the cluster vouches for from proxies.
	// kubesource.Config is Kubernetes mode (--kubernetes).
	Cluster ClusterConfig
}

// source is where meshes come from: a directory or a cluster.
type source interface {
	Run(ctx context.Context, publish func(*mesh.Snapshot)) error
}

// ClusterConfig opens a cluster as the mesh source (kubesource.Config).
// The runner knows a cluster only through it and Cluster, and links no
// cluster client library, so that a control plane fed from files does not
// carry Kubernetes' client libraries: they are 60% of a binary that links
// them, and make every process of it 25–33 MiB larger from the start, as a
// Go process maps nearly all the code it links (docs/performance.md).
type ClusterConfig interface {
	Open(ctx context.Context, cfg Config) (Cluster, error)
}

// Cluster is an open cluster: the meshes it holds, and what a control plane
// serving it needs besides.
type Cluster interface {
	source
	// CA is the certificate authority the cluster keeps for the mesh;
	// never nil.
	CA() *certs.CA
	// Tokens authenticates proxies that show a token instead of a client
	// certificate; nil: none do.
	Tokens() TokenReviewer
	// ServiceNames are the DNS names proxies reach the control plane by,
	// for its serving certificate.
	ServiceNames(domainSuffix string) []string
	// ServeHTTPS starts the cluster's HTTPS servers (token exchange,
	// injection webhook) with tlsConfig, until ctx ends. It returns once
	// they listen.
	ServeHTTPS(ctx context.Context, tlsConfig *tls.Config, log *zap.Logger) error
}

// ControlPlane is a running `minimesh serve`: file watcher -> translator ->
// cache -> xDS server.
type ControlPlane struct {
	Addr   net.Addr // where the xDS server listens
	Runner *Runner
	Server *xds.Server

	cancel context.CancelFunc
	done   chan error
}

// Start loads the config dir, starts watching it, and serves xDS. The
// initial load must succeed in reading the directory; invalid objects in it
// are reported and left out, as on every reload.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.DefaultNamespace == "" {
		cfg.DefaultNamespace = "default"
	}
	ctx, cancel := context.WithCancel(ctx)
	src, ca, cluster, err := openSource(ctx, &cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	if !cfg.InsecureXDS && ca == nil {
		cancel()
		return nil, errors.New("xDS over TLS needs a CA (--ca-dir); or pass --insecure-xds for plaintext")
	}

	lis, err := net.Listen("tcp", cfg.XDSAddress)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("xds address %s: %w", cfg.XDSAddress, err)
	}
	c := cache.New(zapLogger{cfg.Log.Named("cache").Sugar()})
	opts := Options{DefaultNamespace: cfg.DefaultNamespace, CA: ca, RequireAuthentication: !cfg.InsecureXDS}
	if cfg.CADir != "" && cluster == nil {
		opts.KeepCertsDir = filepath.Join(cfg.CADir, "issued")
	}
	xdsNames := cfg.XDSNames
	if cluster != nil {
		opts.Tokens = cluster.Tokens()
		xdsNames = append(xdsNames, cluster.ServiceNames(cmp.Or(cfg.DomainSuffix, mesh.DefaultDomainSuffix))...)
	}
	r := New(c, cfg.Log.Named("runner"), opts)
	r.release = newReleaser() // before anything rebuilds
	xo := xds.Options{Secrets: []string{translator.SecretWorkloadCert, translator.SecretRootCA}, Activity: r.release.busy}
	if cfg.InsecureXDS {
		cfg.Log.Warn("xDS is served in plaintext (--insecure-xds): nothing is authenticated, and any client " +
			"that can reach the xDS port can obtain any workload's certificate and key. Use only on a trusted machine.")
	} else {
		xo.TLS, err = serverTLS(ca, lis.Addr(), xdsNames, cluster != nil)
		if err != nil {
			cancel()
			lis.Close()
			return nil, err
		}
	}
	if cluster != nil {
		httpsTLS, err := serverTLS(ca, lis.Addr(), xdsNames, true)
		if err == nil {
			httpsTLS.ClientAuth, httpsTLS.VerifyPeerCertificate = tls.NoClientCert, nil
			err = cluster.ServeHTTPS(ctx, httpsTLS, cfg.Log)
		}
		if err != nil {
			cancel()
			lis.Close()
			return nil, err
		}
	}
	srv := xds.NewServer(c, r, xds.NewMetrics(cfg.Registry), cfg.Log.Named("xds"), xo)
	if cfg.Registry != nil {
		r.registerMetrics(cfg.Registry)
	}
	go r.release.run(ctx)
	go r.RotateCertificates(ctx)
	cp := &ControlPlane{Addr: lis.Addr(), Runner: r, Server: srv,
		cancel: cancel, done: make(chan error, 2)}

	first := make(chan struct{})
	go func() {
		err := src.Run(ctx, func(s *mesh.Snapshot) {
			applied := srv.Tracker.ConfigChange()
			r.Update(ctx, s)
			applied()
			select {
			case <-first:
			default:
				close(first)
			}
		})
		cp.done <- err
	}()
	// Serve only once the first snapshot is in: a proxy that connects must
	// never see an empty mesh because it came too early.
	select {
	case <-first:
	case err := <-cp.done:
		cancel()
		lis.Close()
		return nil, errors.Join(errors.New("mesh source stopped"), err)
	}
	go func() { cp.done <- srv.Serve(lis) }()
	cfg.Log.Info("serving xDS", zap.String("address", lis.Addr().String()), zap.String("config_dir", cfg.ConfigDir),
		zap.Bool("cluster", cluster != nil), zap.Bool("tls", !cfg.InsecureXDS))
	return cp, nil
}

// openSource opens the mesh source and the CA: a watched directory with a
// CA directory, or a cluster with the CA in a Secret.
func openSource(ctx context.Context, cfg *Config) (source, *certs.CA, Cluster, error) {
	if cfg.Cluster != nil {
		c, err := cfg.Cluster.Open(ctx, *cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		return c, c.CA(), c, nil
	}
	w := file.New(file.Config{
		Dir: cfg.ConfigDir, DefaultNamespace: cfg.DefaultNamespace, DomainSuffix: cfg.DomainSuffix,
		RootNamespace: cfg.RootNamespace,
		HoldOff:       cfg.HoldOff, MaxDelay: cfg.MaxDelay, Log: cfg.Log.Named("watcher"),
	})
	if _, _, err := w.Load(); err != nil {
		return nil, nil, nil, err
	}
	if cfg.CADir == "" {
		return w, nil, nil, nil
	}
	ca, err := certs.LoadOrCreate(certs.Options{Dir: cfg.CADir, TrustDomain: cfg.TrustDomain, CertLifetime: cfg.CertLifetime})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Log.Info("certificate authority ready", zap.String("dir", cfg.CADir), zap.String("trust_domain", ca.TrustDomain()),
		zap.Bool("generated_root", ca.Generated()))
	return w, ca, nil, nil
}

// Stop stops serving and watching.
func (cp *ControlPlane) Stop() {
	cp.cancel()
	cp.Server.Stop()
}

// Wait blocks until the watcher or the server stops, returning its error.
func (cp *ControlPlane) Wait() error { return <-cp.done }

// zapLogger adapts zap to go-control-plane's logger, one level quieter:
// its Info is our Debug.
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Debugf(format string, args ...any) {}
func (l zapLogger) Infof(format string, args ...any)  { l.s.Debugf(format, args...) }
func (l zapLogger) Warnf(format string, args ...any)  { l.s.Warnf(format, args...) }
func (l zapLogger) Errorf(format string, args ...any) { l.s.Errorf(format, args...) }
