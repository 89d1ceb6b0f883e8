package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Defaults for Options.
const (
	DefaultTrustDomain  = "cluster.local"
	DefaultCertLifetime = 24 * time.Hour
	DefaultRootLifetime = 10 * 365 * 24 * time.Hour
)

// clockSkew backdates NotBefore so that peers whose clocks lag slightly
// accept a certificate issued a moment ago.
const clockSkew = time.Minute

// Options configure LoadOrCreate.
type Options struct {
	Dir          string           // --ca-dir: where the CA lives (created 0700 if missing)
	TrustDomain  string           // default "cluster.local"
	CertLifetime time.Duration    // workload cert lifetime, default 24h
	RootLifetime time.Duration    // generated root lifetime, default 10 years
	Now          func() time.Time // for tests; default time.Now
	// Deterministic makes every CA loaded from the same key issue the same
	// certificate for the same identity and period (see derive.go), so
	// that replicas agree without talking to each other.
	Deterministic bool
}

// CA issues workload certificates and verifies peers against its trust bundle.
// It is safe for concurrent use.
type CA struct {
	trustDomain string
	lifetime    time.Duration
	now         func() time.Time
	generated   bool
	seed        []byte // derivation secret; nil unless Options.Deterministic

	signer crypto.Signer
	cert   *x509.Certificate   // signing certificate
	chain  []*x509.Certificate // sent after each leaf: cert and intermediates, never the root
	expiry time.Time           // earliest NotAfter on the path from cert to its root

	bundle    []*x509.Certificate // trusted roots, deduplicated
	bundlePEM []byte              // bundle as concatenated PEM, encoded once
	pool      *x509.CertPool      // bundle as a pool
}

// LoadOrCreate opens the CA in o.Dir: a user-supplied CA in Istio's plug-in
// layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) if
// present, else a root minimesh generated earlier (root-cert.pem,
// root-key.pem), else a new self-signed ECDSA P-256 root written there.
// Certificates in extra-roots.pem join the trust bundle.
func LoadOrCreate(o Options) (*CA, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil { // an existing dir is left as is
		return nil, fmt.Errorf("ca dir: %w", err)
	}
	ca := &CA{trustDomain: o.TrustDomain, lifetime: o.CertLifetime, now: o.Now}
	now := o.Now()
	path := func(name string) string { return filepath.Join(o.Dir, name) }
	has := map[string]bool{}
	for _, name := range []string{CACertFile, CAKeyFile, RootCertFile, RootKeyFile} {
		if has[name], err = fileExists(path(name)); err != nil {
			return nil, fmt.Errorf("ca dir: %w", err)
		}
	}

	var roots []*x509.Certificate
	switch {
	case has[CACertFile] || has[CAKeyFile]:
		roots, err = ca.loadSupplied(o.Dir, now)
		if err != nil {
			err = fmt.Errorf("user-supplied CA: %w", err)
		}
	case has[RootKeyFile]:
		roots, err = ca.loadGenerated(o.Dir, now)
		if err != nil {
			err = fmt.Errorf("generated root: %w", err)
		}
	case has[RootCertFile]:
		err = fmt.Errorf("ca dir %s: %s is present but neither %s (user-supplied CA) nor %s (generated root): refusing to overwrite it",
			o.Dir, RootCertFile, CAKeyFile, RootKeyFile)
	default:
		roots, err = ca.generateRoot(o.Dir, now, o.RootLifetime)
		if err != nil {
			err = fmt.Errorf("generate root in %s: %w", o.Dir, err)
		}
	}
	if err != nil {
		return nil, err
	}

	if ok, err := fileExists(path(ExtraRootsFile)); err != nil {
		return nil, fmt.Errorf("ca dir: %w", err)
	} else if ok {
		extra, err := readCertsFile(path(ExtraRootsFile))
		if err != nil {
			return nil, err
		}
		if err := checkRoots(path(ExtraRootsFile), extra); err != nil {
			return nil, err
		}
		roots = append(roots, extra...)
	}
	ca.setBundle(roots)
	if o.Deterministic {
		if ca.seed, err = derivationSecret(ca.signer); err != nil {
			return nil, fmt.Errorf("CA in %s: %w", o.Dir, err)
		}
	}

	if err := ca.selfTest(); err != nil {
		return nil, fmt.Errorf("CA in %s cannot issue usable workload certificates: %w", o.Dir, err)
	}
	return ca, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("ca: Options.Dir is required")
	}
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if err := validateTrustDomain(o.TrustDomain); err != nil {
		return o, fmt.Errorf("ca: %w", err)
	}
	if o.CertLifetime == 0 {
		o.CertLifetime = DefaultCertLifetime
	}
	if o.RootLifetime == 0 {
		o.RootLifetime = DefaultRootLifetime
	}
	if o.CertLifetime < 0 || o.RootLifetime < 0 {
		return o, errors.New("ca: lifetimes must be positive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// TrustBundle returns all trusted roots (signing root and extra roots), deduplicated.
func (ca *CA) TrustBundle() []*x509.Certificate {
	return append([]*x509.Certificate(nil), ca.bundle...)
}

// TrustBundlePEM returns the trust bundle as concatenated PEM certificates.
// Every proxy's configuration carries it, so it is encoded once and the
// same bytes are returned each time: callers must not modify them.
func (ca *CA) TrustBundlePEM() []byte { return ca.bundlePEM }

// Generated reports whether minimesh generated the root (in this or an earlier run).
func (ca *CA) Generated() bool { return ca.generated }

// TrustDomain returns the trust domain of the identities this CA issues and accepts.
func (ca *CA) TrustDomain() string { return ca.trustDomain }

// setBundle deduplicates roots (by DER bytes, keeping the first) and builds the pool.
func (ca *CA) setBundle(roots []*x509.Certificate) {
	ca.bundle = nil
	ca.pool = x509.NewCertPool()
	for _, r := range roots {
		if !containsCert(ca.bundle, r) {
			ca.bundle = append(ca.bundle, r)
			ca.pool.AddCert(r)
		}
	}
	var b bytes.Buffer
	for _, c := range ca.bundle {
		b.Write(pemEncode("CERTIFICATE", c.Raw))
	}
	ca.bundlePEM = b.Bytes()
}

// selfTest issues a throwaway certificate and verifies it for both usages,
// catching what file checks cannot: a supplied chain whose extended key
// usages, name constraints or path length forbid our workload certificates.
func (ca *CA) selfTest() error {
	c, err := ca.Issue(Identity{TrustDomain: ca.trustDomain, Namespace: "minimesh-self-test", ServiceAccount: "probe"})
	if err != nil {
		return err
	}
	peer := append([]*x509.Certificate{c.Leaf}, ca.chain...)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := ca.Verify(peer, u); err != nil {
			return err
		}
	}
	return nil
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}

func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (serial %x)", c.Subject.String(), c.SerialNumber)
}
