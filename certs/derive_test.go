package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// copyCADir gives a second "replica" the same CA files.
func copyCADir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{RootCertFile, RootKeyFile} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func TestDeterministicIssuanceAgreesAcrossReplicas(t *testing.T) {
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	now := base
	clock := func() time.Time { return now }
	dirA := t.TempDir()
	a, err := LoadOrCreate(Options{Dir: dirA, Deterministic: true, CertLifetime: 3 * time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(Options{Dir: copyCADir(t, dirA), Deterministic: true, CertLifetime: 3 * time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Namespace: "demo", ServiceAccount: "echo"}
	ca1, err := a.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	now = base.Add(30 * time.Minute) // later in the same 2 h period, on the other replica
	cb1, err := b.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1.ChainPEM, cb1.ChainPEM) || !bytes.Equal(ca1.KeyPEM, cb1.KeyPEM) {
		t.Fatalf("replicas issued different certificates for %s in one period:\n%s\n%s", id.SPIFFEID(), ca1, cb1)
	}
	if _, err := a.Verify([]*x509.Certificate{ca1.Leaf}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("derived certificate does not verify: %v", err)
	}
	if got, want := ca1.NotAfter.Sub(ca1.Leaf.NotBefore), 3*time.Hour+clockSkew; got != want {
		t.Errorf("validity %v, want the full lifetime %v", got, want)
	}
	if !ca1.RefreshAt().Equal(ca1.Leaf.NotBefore.Add(clockSkew + 2*time.Hour)) {
		t.Errorf("RefreshAt %v, want the end of the 2h period", ca1.RefreshAt())
	}

	other, err := a.Issue(Identity{Namespace: "demo", ServiceAccount: "client"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.KeyPEM, ca1.KeyPEM) || other.Leaf.SerialNumber.Cmp(ca1.Leaf.SerialNumber) == 0 {
		t.Error("two identities got the same key or serial number")
	}
	now = base.Add(2 * time.Hour) // next period: a new key
	next, err := b.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(next.KeyPEM, ca1.KeyPEM) {
		t.Error("the next period reused the key")
	}

	// Another CA (another key) derives other keys.
	c, err := LoadOrCreate(Options{Dir: t.TempDir(), Deterministic: true, CertLifetime: 3 * time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cc.KeyPEM, next.KeyPEM) {
		t.Error("two CAs derived the same key")
	}
}
