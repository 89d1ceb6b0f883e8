package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"time"
)

// loadSupplied loads Istio's plug-in layout and returns the roots of root-cert.pem.
func (ca *CA) loadSupplied(dir string, now time.Time) ([]*x509.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	rootPath, chainPath := filepath.Join(dir, RootCertFile), filepath.Join(dir, CertChainFile)

	certs, err := readCertsFile(certPath)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	key, err := readKeyFile(keyPath)
	if err != nil {
		return nil, err
	}
	if err := checkSigning(cert, certPath, key, keyPath, now); err != nil {
		return nil, err
	}
	roots, err := readCertsFile(rootPath)
	if err != nil {
		return nil, err
	}
	if err := checkRoots(rootPath, roots); err != nil {
		return nil, err
	}
	// cert-chain.pem may hold ca-cert, intermediates and the root: all go into
	// the intermediates pool, from which Verify picks what it needs. The file
	// is optional when ca-cert is signed by a root directly.
	inter := x509.NewCertPool()
	for _, c := range certs[1:] { // some put the chain into ca-cert.pem too
		inter.AddCert(c)
	}
	if ok, err := fileExists(chainPath); err != nil {
		return nil, err
	} else if ok {
		chain, err := readCertsFile(chainPath)
		if err != nil {
			return nil, err
		}
		for _, c := range chain {
			inter.AddCert(c)
		}
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	paths, err := cert.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%s (issuer %q) does not chain to a root in %s (intermediates from %s): %w",
			certPath, cert.Issuer.String(), rootPath, chainPath, err)
	}
	path := slices.MinFunc(paths, func(a, b []*x509.Certificate) int { return len(a) - len(b) })
	ca.signer, ca.cert = key, cert
	ca.chain = path[:len(path)-1] // without the root; empty when ca-cert is the root
	ca.expiry = earliestExpiry(path)
	return roots, nil
}

// loadGenerated loads the root a previous run generated.
func (ca *CA) loadGenerated(dir string, now time.Time) ([]*x509.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile)
	certs, err := readCertsFile(certPath)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: holds %d certificates, want the generated root only (put other roots in %s)", certPath, len(certs), ExtraRootsFile)
	}
	cert := certs[0]
	key, err := readKeyFile(keyPath)
	if err != nil {
		return nil, err
	}
	if err := checkSigning(cert, certPath, key, keyPath, now); err != nil {
		return nil, err
	}
	ca.signer, ca.cert, ca.chain, ca.expiry, ca.generated = key, cert, nil, cert.NotAfter, true
	return certs, nil
}

// generateRoot creates a self-signed ECDSA P-256 root and persists it:
// root-key.pem (0600) first, then root-cert.pem (0644), each atomically.
func (ca *CA) generateRoot(dir string, now time.Time, lifetime time.Duration) ([]*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "minimesh root CA", Organization: []string{"minimesh"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, RootKeyFile), pemEncode("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, RootCertFile), pemEncode("CERTIFICATE", der), 0o644); err != nil {
		return nil, err
	}
	ca.signer, ca.cert, ca.chain, ca.expiry, ca.generated = key, cert, nil, cert.NotAfter, true
	return []*x509.Certificate{cert}, nil
}

// checkSigning checks that a signing certificate and key belong together,
// that the certificate may sign certificates, and that it is valid now.
func checkSigning(cert *x509.Certificate, certPath string, key crypto.Signer, keyPath string, now time.Time) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%s does not match the certificate in %s", keyPath, certPath)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%s: certificate %s is not a CA (basic constraints CA:TRUE missing)", certPath, describe(cert))
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%s: certificate %s lacks the keyCertSign key usage", certPath, describe(cert))
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%s: certificate %s expired at %s", certPath, describe(cert), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%s: certificate %s is not valid before %s", certPath, describe(cert), cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkRoots refuses trust anchors that cannot anchor anything.
func checkRoots(path string, roots []*x509.Certificate) error {
	for i, r := range roots {
		if !r.BasicConstraintsValid || !r.IsCA {
			return fmt.Errorf("%s: certificate %d %s is not a CA", path, i+1, describe(r))
		}
	}
	return nil
}

func earliestExpiry(path []*x509.Certificate) time.Time {
	t := path[0].NotAfter
	for _, c := range path[1:] {
		if c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
