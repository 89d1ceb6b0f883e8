package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestSuppliedIntermediate(t *testing.T) {
	root := newTestCA(t, "corp root", nil, func(c *x509.Certificate) { c.MaxPathLen = 2 })
	inter := newTestCA(t, "mesh intermediate", root, nil)
	dir := t.TempDir()
	writePlugin(t, dir, inter, root.certPEM, cat(inter.certPEM, root.certPEM))

	ca := mustLoad(t, Options{Dir: dir, Now: newClock().Now})
	if ca.Generated() {
		t.Error("Generated() = true for a user-supplied CA")
	}
	if b := ca.TrustBundle(); len(b) != 1 || !bytes.Equal(b[0].Raw, root.cert.Raw) {
		t.Fatal("trust bundle is not exactly root-cert.pem")
	}
	c, err := ca.Issue(Identity{Namespace: "shop", ServiceAccount: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	chain := parseChain(t, c.ChainPEM)
	if len(chain) != 2 || !bytes.Equal(chain[1].Raw, inter.cert.Raw) {
		t.Fatalf("ChainPEM holds %d certificates, want leaf + intermediate", len(chain))
	}
	if err := chain[0].CheckSignatureFrom(inter.cert); err != nil {
		t.Errorf("leaf not signed by the intermediate: %v", err)
	}
	paths := verifyWithStdlib(t, c.ChainPEM, t0, root.cert)
	if p := paths[0]; len(p) != 3 || !bytes.Equal(p[1].Raw, inter.cert.Raw) || !bytes.Equal(p[2].Raw, root.cert.Raw) {
		t.Errorf("verified path has %d certificates, want leaf -> intermediate -> root", len(p))
	}
	// The leaf's lifetime is capped by the intermediate, not only by the root.
	if c.NotAfter.After(inter.cert.NotAfter) {
		t.Errorf("leaf outlives its intermediate")
	}
}

func TestSuppliedLifetimeCappedByRoot(t *testing.T) {
	// The intermediate outlives its root (crypto/x509 allows it): the root's
	// expiry, the earliest on the path, caps the leaf.
	root := newTestCA(t, "short root", nil, func(c *x509.Certificate) { c.NotAfter = t0.Add(2 * time.Hour) })
	inter := newTestCA(t, "long intermediate", root, nil)
	dir := t.TempDir()
	writePlugin(t, dir, inter, root.certPEM, cat(inter.certPEM, root.certPEM))
	ca := mustLoad(t, Options{Dir: dir, Now: newClock().Now})
	c, err := ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(2 * time.Hour); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %s, want the root's expiry %s", c.NotAfter, want)
	}
}

func TestSuppliedTwoIntermediatesChainWithoutRoot(t *testing.T) {
	root := newTestCA(t, "corp root", nil, nil)
	mid := newTestCA(t, "regional", root, nil)
	inter := newTestCA(t, "mesh", mid, nil)
	other := newTestCA(t, "next root", nil, nil)
	dir := t.TempDir()
	// cert-chain.pem without the root; root-cert.pem with two anchors.
	writePlugin(t, dir, inter, cat(root.certPEM, other.certPEM), cat(inter.certPEM, mid.certPEM))

	ca := mustLoad(t, Options{Dir: dir, Now: newClock().Now})
	if n := len(ca.TrustBundle()); n != 2 {
		t.Errorf("trust bundle holds %d roots, want 2", n)
	}
	c, err := ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseChain(t, c.ChainPEM)); n != 3 {
		t.Errorf("ChainPEM holds %d certificates, want leaf + 2 intermediates", n)
	}
	verifyWithStdlib(t, c.ChainPEM, t0, root.cert)
}

func TestSuppliedRootAsSigner(t *testing.T) {
	root := newTestCA(t, "root", nil, nil)
	dir := t.TempDir()
	writePlugin(t, dir, root, root.certPEM, root.certPEM)
	os.Remove(filepath.Join(dir, "cert-chain.pem")) // optional when ca-cert is the root
	ca := mustLoad(t, Options{Dir: dir, Now: newClock().Now})
	c, err := ca.Issue(Identity{Namespace: "a", ServiceAccount: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseChain(t, c.ChainPEM)); n != 1 {
		t.Errorf("ChainPEM holds %d certificates, want the leaf only (the root is not sent)", n)
	}
	verifyWithStdlib(t, c.ChainPEM, t0, root.cert)
}

func TestSuppliedErrors(t *testing.T) {
	root := newTestCA(t, "root", nil, nil)
	inter := newTestCA(t, "intermediate", root, nil)
	chain := cat(inter.certPEM, root.certPEM)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"wrong key", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, root.certPEM, chain)
			writeTestFile(t, filepath.Join(dir, "ca-key.pem"), root.keyPEM, 0o600)
		}, []string{"ca-key.pem does not match the certificate in", "ca-cert.pem"}},
		{"not a CA", func(t *testing.T, dir string) {
			leaf := newTestCA(t, "leaf", root, func(c *x509.Certificate) { c.IsCA = false; c.KeyUsage = x509.KeyUsageDigitalSignature })
			writePlugin(t, dir, leaf, root.certPEM, cat(leaf.certPEM, root.certPEM))
		}, []string{"ca-cert.pem", "is not a CA"}},
		{"no certSign usage", func(t *testing.T, dir string) {
			ca := newTestCA(t, "weak", root, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
			writePlugin(t, dir, ca, root.certPEM, cat(ca.certPEM, root.certPEM))
		}, []string{"ca-cert.pem", "keyCertSign"}},
		{"expired", func(t *testing.T, dir string) {
			old := newTestCA(t, "old", root, func(c *x509.Certificate) { c.NotAfter = t0.Add(-time.Minute) })
			writePlugin(t, dir, old, root.certPEM, cat(old.certPEM, root.certPEM))
		}, []string{"ca-cert.pem", "expired at"}},
		{"world-readable key", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, root.certPEM, chain)
			os.Chmod(filepath.Join(dir, "ca-key.pem"), 0o604)
		}, []string{"ca-key.pem", "0604", "group/other"}},
		{"foreign root", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, newTestCA(t, "foreign", nil, nil).certPEM, inter.certPEM)
		}, []string{"ca-cert.pem", `(issuer "CN=root") does not chain to a root in`, "root-cert.pem"}},
		{"missing intermediate", func(t *testing.T, dir string) {
			mid := newTestCA(t, "mid", root, nil)
			low := newTestCA(t, "low", mid, nil)
			writePlugin(t, dir, low, root.certPEM, low.certPEM)
		}, []string{"does not chain", "cert-chain.pem"}},
		{"missing key", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, root.certPEM, chain)
			os.Remove(filepath.Join(dir, "ca-key.pem"))
		}, []string{"ca-key.pem", "no such file"}},
		{"missing root-cert.pem", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, root.certPEM, chain)
			os.Remove(filepath.Join(dir, "root-cert.pem"))
		}, []string{"root-cert.pem", "no such file"}},
		{"leaf in root-cert.pem", func(t *testing.T, dir string) {
			leaf := newTestCA(t, "leaf", root, func(c *x509.Certificate) { c.IsCA = false; c.KeyUsage = x509.KeyUsageDigitalSignature })
			writePlugin(t, dir, inter, cat(root.certPEM, leaf.certPEM), chain)
		}, []string{"root-cert.pem", `certificate 2 "CN=leaf"`, "is not a CA"}},
		{"key in cert file", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, cat(root.certPEM, root.keyPEM), chain)
		}, []string{"root-cert.pem", `"EC PRIVATE KEY", want CERTIFICATE`}},
		{"garbage key", func(t *testing.T, dir string) {
			writePlugin(t, dir, inter, root.certPEM, chain)
			writeTestFile(t, filepath.Join(dir, "ca-key.pem"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
		}, []string{"ca-key.pem", "parse private key"}},
		{"intermediate forbids client auth", func(t *testing.T, dir string) {
			srv := newTestCA(t, "server-only", root, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
			writePlugin(t, dir, srv, root.certPEM, cat(srv.certPEM, root.certPEM))
		}, []string{"cannot issue usable workload certificates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := LoadOrCreate(Options{Dir: dir, Now: newClock().Now})
			wantErr(t, err, tc.want...)
			if err != nil && bytes.Contains([]byte(err.Error()), []byte("PRIVATE KEY-----")) {
				t.Error("error contains key material")
			}
		})
	}
}
