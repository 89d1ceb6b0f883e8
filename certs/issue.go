package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// Cert is an issued certificate with its private key.
type Cert struct {
	Identity Identity
	ChainPEM []byte            `json:"-"` // leaf + intermediates up to (not including) the root
	KeyPEM   []byte            `json:"-"` // PKCS#8 "PRIVATE KEY"; never printed or logged
	Leaf     *x509.Certificate `json:"-"`
	NotAfter time.Time
}

// String returns identity, serial number and expiry; never the key.
func (c Cert) String() string {
	serial := "?"
	if c.Leaf != nil {
		serial = fmt.Sprintf("%x", c.Leaf.SerialNumber)
	}
	return fmt.Sprintf("%s serial=%s expires=%s", c.Identity.SPIFFEID(), serial, c.NotAfter.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the key.
func (c Cert) GoString() string { return "certs.Cert{" + c.String() + "}" }

// TLSCertificate returns the certificate and key for crypto/tls.
func (c *Cert) TLSCertificate() (tls.Certificate, error) {
	tc, err := tls.X509KeyPair(c.ChainPEM, c.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", c.Identity.SPIFFEID(), err)
	}
	return tc, nil
}

// RefreshAt is when the certificate should be re-issued: two thirds of the
// way from its issue to NotAfter. (NotBefore is backdated by clockSkew; the
// refresh counts from the real issue time, or a short lifetime would be due
// at once.)
func (c *Cert) RefreshAt() time.Time {
	issued := c.Leaf.NotBefore.Add(clockSkew)
	if !issued.Before(c.NotAfter) {
		issued = c.Leaf.NotBefore
	}
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

// Issue returns a new workload certificate for id, whose only SAN is its
// SPIFFE ID, usable for client and server authentication. An empty
// id.TrustDomain means the CA's; another trust domain is refused.
func (ca *CA) Issue(id Identity) (*Cert, error) {
	id, err := ca.normalize(id)
	if err != nil {
		return nil, err
	}
	return ca.sign(id, &x509.Certificate{
		URIs:        []*url.URL{id.URI()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
}

// IssueServer returns a certificate for minimesh's own xDS server, with the
// given DNS and IP SANs plus spiffe://<td>/ns/<namespace>/sa/minimesh,
// usable for server authentication only.
func (ca *CA) IssueServer(namespace string, dnsNames []string, ips []net.IP) (*Cert, error) {
	id, err := ca.normalize(Identity{Namespace: namespace, ServiceAccount: "minimesh"})
	if err != nil {
		return nil, err
	}
	for _, n := range dnsNames {
		if n == "" {
			return nil, fmt.Errorf("issue server certificate: empty DNS name")
		}
	}
	return ca.sign(id, &x509.Certificate{
		URIs:        []*url.URL{id.URI()},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// normalize fills in the CA's trust domain and validates id.
func (ca *CA) normalize(id Identity) (Identity, error) {
	if id.TrustDomain == "" {
		id.TrustDomain = ca.trustDomain
	}
	if err := id.Validate(); err != nil {
		return id, fmt.Errorf("issue certificate: invalid identity: %w", err)
	}
	if id.TrustDomain != ca.trustDomain {
		return id, fmt.Errorf("issue certificate for %s: trust domain %q is not this CA's (%q)", id.SPIFFEID(), id.TrustDomain, ca.trustDomain)
	}
	return id, nil
}

// sign completes tmpl (serial, validity, key usage) with a fresh P-256 key
// and signs it.
func (ca *CA) sign(id Identity, tmpl *x509.Certificate) (*Cert, error) {
	now := ca.now()
	if ca.seed != nil {
		now = ca.period(now) // deterministic: the period's certificate
	}
	notAfter := now.Add(ca.lifetime)
	if notAfter.After(ca.expiry) {
		notAfter = ca.expiry
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("issue certificate for %s: CA certificate chain expired at %s", id.SPIFFEID(), ca.expiry.UTC().Format(time.RFC3339))
	}
	serial, key, signer, err := ca.newKey(id, now)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", id.SPIFFEID(), err)
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{Organization: []string{"minimesh"}}
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", id.SPIFFEID(), err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", id.SPIFFEID(), err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: encode key: %w", id.SPIFFEID(), err)
	}
	chainPEM := pemEncode("CERTIFICATE", der)
	for _, c := range ca.chain {
		chainPEM = append(chainPEM, pemEncode("CERTIFICATE", c.Raw)...)
	}
	return &Cert{
		Identity: id,
		ChainPEM: chainPEM,
		KeyPEM:   pemEncode("PRIVATE KEY", keyDER),
		Leaf:     leaf,
		NotAfter: leaf.NotAfter,
	}, nil
}

// newKey returns the serial number and key of a new certificate, and what
// signs it: random ones, or with Options.Deterministic the ones every
// replica derives for the period starting at start.
func (ca *CA) newKey(id Identity, start time.Time) (*big.Int, *ecdsa.PrivateKey, crypto.Signer, error) {
	if ca.seed != nil {
		key, err := ca.derivedKey(id, start)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("derive key: %w", err)
		}
		return ca.derivedSerial(id, start), key, deterministicSigner{ca.signer}, nil
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serial: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return serial, key, ca.signer, nil
}
