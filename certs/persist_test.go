package certs

import (
	"bytes"
	"os"
	"path/filepath"
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
