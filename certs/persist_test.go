package certs

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPersistentStoreSurvivesRestart: a restarted control plane (new CA
// and Store on the same directories) serves the same certificate until it
// is due, then a new one; a certificate from another root is not reused.
func TestPersistentStoreSurvivesRestart(t *testing.T) {
	caDir, keep := t.TempDir(), t.TempDir()
	clk := newClock()
	id := Identity{Namespace: "default", ServiceAccount: "web"}
	open := func() *Store {
		return NewPersistentStore(mustLoad(t, Options{Dir: caDir, CertLifetime: time.Hour, Now: clk.Now}), keep)
	}
	first, err := open().Get(id)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(keep, "default", "web", KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	again, err := open().Get(id) // "restart"
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ChainPEM, first.ChainPEM) || !bytes.Equal(again.KeyPEM, first.KeyPEM) {
		t.Fatal("after a restart the store issued a new certificate instead of the kept one")
	}

	clk.Set(first.RefreshAt())
	due, err := open().Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(due.ChainPEM, first.ChainPEM) {
		t.Fatal("a certificate due for refresh was reused after a restart")
	}

	// Another CA (the root was replaced): the kept certificate is not
	// trusted any more and is replaced.
	other := NewPersistentStore(mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: time.Hour, Now: clk.Now}), keep)
	fresh, err := other.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fresh.ChainPEM, due.ChainPEM) {
		t.Fatal("a certificate from another CA was reused")
	}
}

// TestKeptCertificateLostOrTornIsIssuedAgain: kept certificates are
// written without syncing to disk (persist.go), so a system crash may
// leave one missing, empty, or with a key that is not its chain's. Each is
// issued again on the next start, and kept whole again.
func TestKeptCertificateLostOrTornIsIssuedAgain(t *testing.T) {
	caDir := t.TempDir()
	for _, tc := range []struct {
		name  string
		crash func(t *testing.T, dir string, other *Cert)
	}{
		{"chain missing", func(t *testing.T, dir string, _ *Cert) {
			if err := os.Remove(filepath.Join(dir, ChainFileName)); err != nil {
				t.Fatal(err)
			}
		}},
		{"key empty", func(t *testing.T, dir string, _ *Cert) {
			if err := os.WriteFile(filepath.Join(dir, KeyFileName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"key of another certificate", func(t *testing.T, dir string, other *Cert) {
			if err := os.WriteFile(filepath.Join(dir, KeyFileName), other.KeyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := t.TempDir()
			id := Identity{Namespace: "default", ServiceAccount: "web"}
			open := func() *Store { return NewPersistentStore(mustLoad(t, Options{Dir: caDir}), keep) }
			first, err := open().Get(id)
			if err != nil {
				t.Fatal(err)
			}
			other, err := open().Get(Identity{Namespace: "default", ServiceAccount: "other"})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(keep, "default", "web")
			tc.crash(t, dir, other)

			again, err := open().Get(id) // the next start
			if err != nil {
				t.Fatalf("after the crash: %v", err)
			}
			if bytes.Equal(again.ChainPEM, first.ChainPEM) {
				t.Fatal("the damaged certificate was served")
			}
			if _, err := tls.X509KeyPair(again.ChainPEM, again.KeyPEM); err != nil {
				t.Fatalf("the certificate issued again: %v", err)
			}
			kept, err := open().Get(id) // and once more: the new one was kept
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kept.ChainPEM, again.ChainPEM) || !bytes.Equal(kept.KeyPEM, again.KeyPEM) {
				t.Error("the certificate issued again was not kept whole")
			}
		})
	}
}

// BenchmarkIssueKept: a new identity's certificate issued and kept on
// disk, as when thousands of workloads connect to a new control plane.
func BenchmarkIssueKept(b *testing.B) {
	s := NewPersistentStore(mustLoad(b, Options{Dir: b.TempDir()}), b.TempDir())
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Get(Identity{Namespace: "default", ServiceAccount: "sa-" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
}
