package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// leafOpts describe a leaf certificate built by issueRaw.
type leafOpts struct {
	uris      []string
	notAfter  time.Time // default t0+1h
	isCA      bool
	serverEKU bool // server auth only instead of client+server
}

// issueRaw builds a leaf signed by signer with crypto/x509 directly, so that
// Verify can be shown certificates the CA itself would never issue.
func issueRaw(t *testing.T, signer *testCA, o leafOpts) []*x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notAfter.IsZero() {
		o.notAfter = t0.Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{Organization: []string{"test"}},
		NotBefore:             t0.Add(-2 * time.Hour),
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
	}
	if o.serverEKU {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if o.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, u := range o.uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, key.Public(), signer.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{leaf}
}

// pluginCA returns a CA whose signing root the test holds.
func pluginCA(t *testing.T, clk *clock) (*CA, *testCA) {
	t.Helper()
	root := newTestCA(t, "test root", nil, nil)
	dir := t.TempDir()
	writePlugin(t, dir, root, root.certPEM, root.certPEM)
	return mustLoad(t, Options{Dir: dir, Now: clk.Now}), root
}

func TestVerifyAccepts(t *testing.T) {
	clk := newClock()
	ca, _ := pluginCA(t, clk)
	c, err := ca.Issue(Identity{Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		id, err := ca.Verify([]*x509.Certificate{c.Leaf}, u)
		if err != nil {
			t.Fatalf("usage %v: %v", u, err)
		}
		if want := (Identity{"cluster.local", "default", "web"}); id != want {
			t.Errorf("identity = %+v, want %+v", id, want)
		}
	}
}

func TestVerifyAcceptsIntermediateChain(t *testing.T) {
	root := newTestCA(t, "root", nil, nil)
	inter := newTestCA(t, "intermediate", root, nil)
	dir := t.TempDir()
	writePlugin(t, dir, inter, root.certPEM, append(append([]byte{}, inter.certPEM...), root.certPEM...))
	ca := mustLoad(t, Options{Dir: dir, Now: newClock().Now})
	c, err := ca.Issue(Identity{Namespace: "shop", ServiceAccount: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.Verify(parseChain(t, c.ChainPEM), x509.ExtKeyUsageClientAuth)
	if err != nil || id.ServiceAccount != "cart" {
		t.Fatalf("Verify(leaf+intermediate) = %+v, %v", id, err)
	}
	// Without the intermediate the leaf does not chain to the root.
	_, err = ca.Verify([]*x509.Certificate{c.Leaf}, x509.ExtKeyUsageClientAuth)
	wantErr(t, err, "unknown authority")
}

func TestVerifyRejects(t *testing.T) {
	clk := newClock()
	ca, root := pluginCA(t, clk)
	foreign := newTestCA(t, "foreign root", nil, nil)
	const good = "spiffe://cluster.local/ns/default/sa/web"

	expired, err := ca.Issue(Identity{Namespace: "default", ServiceAccount: "web"})
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.IssueServer("minimesh-system", []string{"minimesh.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(25 * time.Hour)) // past the 24h default lifetime

	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		usage x509.ExtKeyUsage
		want  string
	}{
		{"empty chain", nil, x509.ExtKeyUsageClientAuth, "no certificate"},
		{"foreign CA", issueRaw(t, foreign, leafOpts{uris: []string{good}, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "unknown authority"},
		{"expired", []*x509.Certificate{expired.Leaf}, x509.ExtKeyUsageClientAuth, "expired"},
		{"no SPIFFE SAN", issueRaw(t, root, leafOpts{notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "has 0 URI SANs"},
		{"two URI SANs", issueRaw(t, root, leafOpts{uris: []string{good, "spiffe://cluster.local/ns/kube-system/sa/admin"}, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "has 2 URI SANs"},
		{"malformed SPIFFE ID", issueRaw(t, root, leafOpts{uris: []string{"spiffe://cluster.local/ns/default"}, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "path must be"},
		{"other trust domain", issueRaw(t, root, leafOpts{uris: []string{"spiffe://evil.org/ns/default/sa/web"}, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, `trust domain "evil.org"`},
		{"CA as leaf", issueRaw(t, root, leafOpts{uris: []string{good}, isCA: true, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "CA certificate"},
		{"server cert used as client", issueRaw(t, root, leafOpts{uris: []string{good}, serverEKU: true, notAfter: t0.Add(48 * time.Hour)}), x509.ExtKeyUsageClientAuth, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ca.Verify(tc.chain, tc.usage)
			if err == nil {
				t.Fatalf("accepted as %+v", id)
			}
			wantErr(t, err, tc.want)
		})
	}
	// The xDS server's own certificate is for server auth only.
	clk.Set(t0)
	_, err = ca.Verify([]*x509.Certificate{server.Leaf}, x509.ExtKeyUsageClientAuth)
	wantErr(t, err, "usage")
}
