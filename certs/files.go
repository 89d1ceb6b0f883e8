package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFiles writes key.pem (0600), cert-chain.pem and root-cert.pem (0644)
// into dir (created 0700 if missing), each atomically, for gRPC's file_watcher
// certificate provider and for xDS client authentication.
func WriteFiles(dir string, c *Cert, roots []byte) error {
	if c == nil || len(c.ChainPEM) == 0 || len(c.KeyPEM) == 0 {
		return errors.New("write certificate files: empty certificate")
	}
	if _, err := parseCertsPEM(roots); err != nil {
		return fmt.Errorf("write certificate files: trust roots: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write certificate files: %w", err)
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{KeyFileName, c.KeyPEM, 0o600},
		{ChainFileName, c.ChainPEM, 0o644},
		{RootsFileName, roots, 0o644},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("write certificate files: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so readers see the old content or the new, never a
// partial file, and syncs both to disk before it returns. The temporary
// file is created 0600, so a key is never readable by others, not even
// briefly.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// replaceFile is writeFileAtomic, syncing to disk only if durable. A file
// written without is still replaced atomically while the system runs; a
// crash of the system (not of this process) may leave the old content, or
// none, or (on some file systems) an empty file.
func replaceFile(path string, data []byte, perm os.FileMode, durable bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if durable {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if durable {
		// Persist the rename itself; best effort (not every platform can sync a directory).
		if d, derr := os.Open(dir); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

// fileExists reports whether path exists; errors other than "not found" are returned.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readCertsFile reads every certificate in a PEM file; it needs at least one.
func readCertsFile(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// parseCertsPEM parses a sequence of CERTIFICATE blocks. Any other block
// type is an error: a key has no business in a certificate file.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", i, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// readKeyFile reads a private key (PKCS#8, SEC 1 or PKCS#1) after checking
// that the file is not accessible to group or others. Errors never include
// key material.
func readKeyFile(path string) (crypto.Signer, error) {
	if err := checkKeyPerm(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM private key found", path)
		}
		var key any
		switch b.Type {
		case "EC PARAMETERS": // written by `openssl ecparam -genkey` before the key
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("%s: unsupported PEM block %q (want an unencrypted PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", path, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: parse private key: %w", path, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: private key of type %T cannot sign", path, key)
		}
		return signer, nil
	}
}

// checkKeyPerm refuses a key file that group or others may access.
func checkKeyPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // no Unix permission bits
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s: permissions %#o give group/other access to a private key; run chmod 600 %s", path, perm, path)
	}
	return nil
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
