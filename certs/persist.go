package certs

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
)

// Issued workload certificates are kept on disk (dir/<namespace>/<service
// account>/, key 0600) so that a restarted control plane serves the very
// same certificates, and proxies see no change, until they come due.
//
// They are written without syncing to disk. Keeping them is a saving, not
// a promise: a certificate that is not there, or not whole, or whose key
// and chain do not match, is issued anew on the next start (load checks
// all of that), and the proxy gets the new one as it would on rotation.
// Syncing would buy nothing more, and it was the largest part of issuing:
// with 2000 identities issued while 2000 proxies connected, the two files'
// syncs took 0.5 s of the server's CPU, signing all the certificates 0.5 s
// (perf). The CA's own key and certificate are synced (load.go).

// NewPersistentStore returns a Store that also keeps its certificates in dir.
func NewPersistentStore(ca *CA, dir string) *Store {
	s := NewStore(ca)
	s.dir = dir
	return s
}

// identityDir is where one identity's certificate is kept.
func (s *Store) identityDir(id Identity) string {
	return filepath.Join(s.dir, id.Namespace, id.ServiceAccount)
}

// load reads a kept certificate for id, if there is one that this CA still
// vouches for and that is not due for refresh; nil otherwise.
func (s *Store) load(id Identity) *Cert {
	dir := s.identityDir(id)
	if err := checkKeyPerm(filepath.Join(dir, KeyFileName)); err != nil {
		return nil
	}
	chainPEM, err1 := os.ReadFile(filepath.Join(dir, ChainFileName))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err1 != nil || err2 != nil {
		return nil
	}
	if _, err := tls.X509KeyPair(chainPEM, keyPEM); err != nil {
		return nil // key and certificate do not belong together
	}
	chain, err := parseCertsPEM(chainPEM)
	if err != nil || len(chain) == 0 {
		return nil
	}
	got, err := s.ca.Verify(chain, 0)
	if err != nil || got != id {
		return nil // from another CA (the root changed), expired, or not id
	}
	c := &Cert{Identity: id, ChainPEM: chainPEM, KeyPEM: keyPEM, Leaf: chain[0], NotAfter: chain[0].NotAfter}
	if !s.ca.now().Before(c.RefreshAt()) {
		return nil
	}
	return c
}

// save keeps a certificate for the next start.
func (s *Store) save(c *Cert) error {
	dir := s.identityDir(c.Identity)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep certificate of %s: %w", c.Identity, err)
	}
	if err := replaceFile(filepath.Join(dir, KeyFileName), c.KeyPEM, 0o600, false); err != nil {
		return fmt.Errorf("keep certificate of %s: %w", c.Identity, err)
	}
	if err := replaceFile(filepath.Join(dir, ChainFileName), c.ChainPEM, 0o644, false); err != nil {
		return fmt.Errorf("keep certificate of %s: %w", c.Identity, err)
	}
	return nil
}
