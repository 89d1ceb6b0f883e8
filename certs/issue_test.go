package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIssueWorkloadCert(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir(), Now: newClock().Now})
	c, err := ca.Issue(Identity{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/default/sa/web" {
		t.Errorf("URI SANs = %v, want exactly spiffe://cluster.local/ns/default/sa/web", leaf.URIs)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs: dns=%v ip=%v email=%v", leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if got := fmt.Sprint(leaf.ExtKeyUsage); got != fmt.Sprint([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v, want server+client auth", leaf.ExtKeyUsage)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("KeyUsage = %b", leaf.KeyUsage)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("leaf must carry CA:FALSE")
	}
	if got := leaf.Subject.Organization; len(got) != 1 || got[0] != "minimesh" {
		t.Errorf("subject O = %v, want [minimesh]", got)
	}
	if !leaf.NotBefore.Equal(t0.Add(-time.Minute)) {
		t.Errorf("NotBefore = %s, want now-1m", leaf.NotBefore)
	}
	if want := t0.Add(24 * time.Hour); !leaf.NotAfter.Equal(want) || !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %s (Cert.NotAfter %s), want now+24h", leaf.NotAfter, c.NotAfter)
	}
	if n := leaf.SerialNumber.BitLen(); n < 100 || n > 128 {
		t.Errorf("serial has %d bits, want a random 128-bit number", n)
	}
	if c.Identity != (Identity{"cluster.local", "default", "web"}) {
		t.Errorf("Identity = %+v", c.Identity)
	}
	verifyWithStdlib(t, c.ChainPEM, t0, ca.TrustBundle()...)

	// The key: PKCS#8, P-256, matching the leaf.
	b, rest := pem.Decode(c.KeyPEM)
	if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatal(`KeyPEM is not a single "PRIVATE KEY" block`)
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() || !ec.PublicKey.Equal(leaf.PublicKey) {
		t.Error("key is not the leaf's ECDSA P-256 key")
	}

	other, err := ca.Issue(Identity{Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 || bytes.Equal(other.KeyPEM, c.KeyPEM) {
		t.Error("two issuances share a serial or a key")
	}
}

func TestIssueLifetimes(t *testing.T) {
	clk := newClock()
	ca := mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: time.Hour, Now: clk.Now})
	c, err := ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour); !c.NotAfter.Equal(want) {
		t.Errorf("custom lifetime: NotAfter = %s, want %s", c.NotAfter, want)
	}

	// A root that expires in 2h caps a 24h certificate.
	ca = mustLoad(t, Options{Dir: t.TempDir(), RootLifetime: 2 * time.Hour, Now: clk.Now})
	c, err = ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(2 * time.Hour); !c.NotAfter.Equal(want) {
		t.Errorf("capped lifetime: NotAfter = %s, want the root's expiry %s", c.NotAfter, want)
	}
	clk.Set(t0.Add(3 * time.Hour))
	_, err = ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	wantErr(t, err, "CA certificate chain expired")
}

func TestIssueRejectsBadIdentity(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir()})
	_, err := ca.Issue(Identity{Namespace: "default"})
	wantErr(t, err, "service account is empty")
	_, err = ca.Issue(Identity{TrustDomain: "other.org", Namespace: "a", ServiceAccount: "b"})
	wantErr(t, err, `trust domain "other.org" is not this CA's`)
	_, err = ca.Issue(Identity{Namespace: "a/b", ServiceAccount: "c"})
	wantErr(t, err, "namespace")
}

func TestIssueServer(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir(), TrustDomain: "example.org"})
	c, err := ca.IssueServer("minimesh-system", []string{"minimesh.minimesh-system.svc", "localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leaf
	if len(l.URIs) != 1 || l.URIs[0].String() != "spiffe://example.org/ns/minimesh-system/sa/minimesh" {
		t.Errorf("URIs = %v", l.URIs)
	}
	if fmt.Sprint(l.DNSNames) != "[minimesh.minimesh-system.svc localhost]" || len(l.IPAddresses) != 1 || !l.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("DNS=%v IP=%v", l.DNSNames, l.IPAddresses)
	}
	if len(l.ExtKeyUsage) != 1 || l.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want server auth only", l.ExtKeyUsage)
	}
	tc, err := c.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
}

func TestCertNeverShowsKey(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir()})
	c, err := ca.Issue(Identity{Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprint(*c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", c), string(js)} {
		if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, string(c.KeyPEM[30:60])) {
			t.Errorf("key material in %q", s)
		}
	}
	s := c.String()
	for _, want := range []string{"spiffe://cluster.local/ns/default/sa/web", fmt.Sprintf("%x", c.Leaf.SerialNumber), c.NotAfter.UTC().Format(time.RFC3339)} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}
}

func TestRefreshAt(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: 2 * time.Minute, Now: newClock().Now})
	c, err := ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	// Issued now, NotAfter = now+2m (NotBefore is backdated a minute for
	// clock skew, which does not count): two thirds of 2m after now.
	if want := t0.Add(80 * time.Second); !c.RefreshAt().Equal(want) {
		t.Errorf("RefreshAt = %s, want %s", c.RefreshAt(), want)
	}
}

func TestWriteFiles(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir()})
	c, err := ca.Issue(Identity{Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out", "web")
	for range 2 { // the second run replaces the files
		if err := WriteFiles(dir, c, ca.TrustBundlePEM()); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]os.FileMode{"key.pem": 0o600, "cert-chain.pem": 0o644, "root-cert.pem": 0o644} {
		if got := fileMode(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s mode = %#o, want %#o", name, got, want)
		}
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %#o, want 0700", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("dir holds %d entries, want 3 (no temp files)", len(entries))
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert-chain.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pair.Certificate[0], c.Leaf.Raw) {
		t.Error("cert-chain.pem does not start with the leaf")
	}
	roots, _ := os.ReadFile(filepath.Join(dir, "root-cert.pem"))
	if !bytes.Equal(roots, ca.TrustBundlePEM()) {
		t.Error("root-cert.pem is not the trust bundle")
	}
	wantErr(t, WriteFiles(dir, c, nil), "trust roots")
	wantErr(t, WriteFiles(dir, nil, roots), "empty certificate")
}
