// Package kubeca keeps minimesh's CA in a Kubernetes Secret, shared by
// every replica.
//
// The first replica to start finds no Secret. Creating it is a
// single-writer duty: replicas run client-go leader election on a Lease,
// and only the leader generates a root and creates the Secret; the others
// wait for it to appear. Every replica then loads the same root, and, with
// deterministic issuance (certs.Options.Deterministic), issues the same
// workload certificates: a proxy that loses its replica and reconnects to
// another sees no change at all.
//
// A user who brings their own CA creates the Secret beforehand with Istio's
// plug-in layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem);
// a generated root uses root-cert.pem and root-key.pem.
//
// The leader also publishes the trust bundle as a ConfigMap in every
// namespace (RootCertConfigMap), which injected sidecars mount to verify
// the xDS server.
package kubeca

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/minimesh/minimesh/certs"
)

// Names of what kubeca keeps in the cluster.
const (
	// LeaseName is the Lease replicas elect a leader with.
	LeaseName = "minimesh-leader"
	// RootCertConfigMap holds the trust bundle (key RootCertKey) in every
	// namespace, for sidecars to verify the xDS server.
	RootCertConfigMap = "minimesh-ca-root-cert"
	RootCertKey       = "root-cert.pem"
)

// secretFiles are the keys of the CA Secret, named as the files of a CA
// directory (certs.LoadOrCreate reads them).
var secretFiles = []string{certs.RootCertFile, certs.RootKeyFile, certs.CACertFile, certs.CAKeyFile,
	certs.CertChainFile, certs.ExtraRootsFile}

// Config says where the CA lives and who this replica is.
type Config struct {
	Client kubernetes.Interface
	// Namespace and SecretName locate the CA Secret and the Lease
	// (minimesh's own namespace).
	Namespace  string
	SecretName string
	// Identity names this replica in the Lease (its pod name).
	Identity string
	// CA options; Dir is ignored (kubeca uses a private temporary one).
	CA certs.Options
	// Election timing; zero values take client-go's usual 15 s / 10 s / 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *zap.Logger
}

// Replica is one minimesh replica's part in the shared CA.
type Replica struct {
	cfg       Config
	leader    chan struct{} // closed when this replica first leads
	firstLead sync.Once
	// created is set when this replica created the CA secret.
	created atomic.Bool
	// leading is true while this replica holds the Lease.
	leading atomic.Bool
}

// Start joins the leader election and returns once the CA Secret exists
// and is loaded; the election goes on until ctx ends (the leader publishes
// root-cert ConfigMaps, see PublishRootCert).
func Start(ctx context.Context, cfg Config) (*certs.CA, *Replica, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	r := &Replica{cfg: cfg, leader: make(chan struct{})}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: LeaseName},
		Client:     cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				r.leading.Store(true)
				cfg.Log.Info("leading: this replica creates the CA secret if missing", zap.String("identity", cfg.Identity))
				r.createSecretUntilDone(ctx)
				r.firstLead.Do(func() { close(r.leader) })
			},
			OnStoppedLeading: func() {
				r.leading.Store(false)
				cfg.Log.Info("no longer leading", zap.String("identity", cfg.Identity))
			},
			OnNewLeader: func(id string) {
				if id != cfg.Identity {
					cfg.Log.Info("leader elected", zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("leader election: %w", err)
	}
	go func() {
		// Run returns when leadership is lost or ctx ends; stand again until ctx ends.
		for ctx.Err() == nil {
			elector.Run(ctx)
		}
	}()
	ca, err := r.waitForSecret(ctx)
	if err != nil {
		return nil, nil, err
	}
	return ca, r, nil
}

// CreatedSecret reports whether this replica created the CA secret.
func (r *Replica) CreatedSecret() bool { return r.created.Load() }

// IsLeader reports whether this replica holds the Lease now.
func (r *Replica) IsLeader() bool { return r.leading.Load() }

// Leading is closed once this replica has become the leader.
func (r *Replica) Leading() <-chan struct{} { return r.leader }

// waitForSecret polls the CA Secret until it exists, and loads it.
func (r *Replica) waitForSecret(ctx context.Context) (*certs.CA, error) {
	warned := time.Now()
	for {
		s, err := r.cfg.Client.CoreV1().Secrets(r.cfg.Namespace).Get(ctx, r.cfg.SecretName, metav1.GetOptions{})
		switch {
		case err == nil:
			return r.load(s)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("CA secret %s/%s: %w", r.cfg.Namespace, r.cfg.SecretName, err)
		}
		if time.Since(warned) > 10*time.Second {
			r.cfg.Log.Info("waiting for the leader to create the CA secret",
				zap.String("secret", r.cfg.Namespace+"/"+r.cfg.SecretName))
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createSecretUntilDone creates the CA Secret if it is missing, retrying
// with a growing delay (up to 30 s) until it exists or ctx ends (leadership
// lost): every replica waits for it, so giving up would leave them all
// waiting.
func (r *Replica) createSecretUntilDone(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		err := r.createSecretIfMissing(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		r.cfg.Log.Error("cannot create the CA secret; retrying", zap.String("secret", r.cfg.Namespace+"/"+r.cfg.SecretName),
			zap.Duration("in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// createSecretIfMissing generates a root and stores it in the CA Secret,
// unless the Secret exists. Only the leader calls it.
func (r *Replica) createSecretIfMissing(ctx context.Context) error {
	secrets := r.cfg.Client.CoreV1().Secrets(r.cfg.Namespace)
	if _, err := secrets.Get(ctx, r.cfg.SecretName, metav1.GetOptions{}); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	dir, err := os.MkdirTemp("", "minimesh-ca-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := r.cfg.CA
	opts.Dir = dir
	if _, err := certs.LoadOrCreate(opts); err != nil { // empty dir: generates a root
		return err
	}
	data := map[string][]byte{}
	for _, name := range []string{certs.RootCertFile, certs.RootKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		data[name] = b
	}
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: r.cfg.SecretName, Namespace: r.cfg.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "minimesh"}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		r.created.Store(true)
		r.cfg.Log.Info("generated a new root and stored it", zap.String("secret", r.cfg.Namespace+"/"+r.cfg.SecretName))
	}
	return err
}

// load materialises the Secret as a CA directory and loads it. The
// directory is private (0700) and removed once loaded: the key stays in
// memory only.
func (r *Replica) load(s *corev1.Secret) (*certs.CA, error) {
	dir, err := os.MkdirTemp("", "minimesh-ca-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	n := 0
	for _, name := range secretFiles {
		if b, ok := s.Data[name]; ok {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				return nil, err
			}
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("CA secret %s/%s holds none of %v", s.Namespace, s.Name, secretFiles)
	}
	opts := r.cfg.CA
	opts.Dir = dir
	ca, err := certs.LoadOrCreate(opts)
	if err != nil {
		return nil, fmt.Errorf("CA secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if ca.Generated() && s.Data[certs.RootKeyFile] == nil {
		return nil, errors.New("internal: generated a root instead of loading the secret")
	}
	return ca, nil
}
