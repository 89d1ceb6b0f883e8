package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Deterministic issuance.
//
// Several replicas of minimesh share one CA (on Kubernetes, a Secret). A
// proxy that loses its replica reconnects to another, and must see exactly
// the configuration it had: the same secrets, byte for byte, with the same
// versions. So with Options.Deterministic every replica issues the same
// certificate for the same identity at the same time, without talking to
// the others:
//
//   - time is cut into periods of two thirds of the certificate lifetime;
//     the certificate for a period starts at the period's start (backdated
//     by clockSkew) and lasts the full lifetime, so it is renewed with a
//     third of its life left, as the random certificates are;
//   - its key is derived from the CA's private key, the SPIFFE ID and the
//     period with HMAC-SHA256, so only the CA can compute it;
//   - its serial number comes from the same derivation, and the CA signs
//     with deterministic ECDSA (RFC 6979); RSA PKCS#1 v1.5 signatures are
//     deterministic anyway.

// errNotDeterministic is returned for a CA key whose signatures cannot be
// made deterministic.
var errNotDeterministic = errors.New("deterministic issuance needs an ECDSA or RSA CA key")

// derivationSecret returns the secret the derived keys come from: a hash of
// the CA's private key, never the key itself.
func derivationSecret(signer crypto.Signer) ([]byte, error) {
	var raw []byte
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		raw = b
	case *rsa.PrivateKey:
		raw = x509.MarshalPKCS1PrivateKey(k)
	default:
		return nil, fmt.Errorf("%w, not %T", errNotDeterministic, signer)
	}
	sum := sha256.Sum256(append([]byte("minimesh certificate derivation v1\x00"), raw...))
	return sum[:], nil
}

// period returns the start of the issuance period holding now.
func (ca *CA) period(now time.Time) time.Time {
	p := ca.lifetime * 2 / 3
	if p < time.Second {
		p = time.Second
	}
	return now.Truncate(p)
}

// derived returns HMAC-SHA256(secret, label | spiffe ID | period | counter).
func (ca *CA) derived(label string, id Identity, start time.Time, counter uint32) []byte {
	m := hmac.New(sha256.New, ca.seed)
	var buf [12]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(start.Unix()))
	binary.BigEndian.PutUint32(buf[8:], counter)
	m.Write([]byte(label + "\x00" + id.SPIFFEID() + "\x00"))
	m.Write(buf[:])
	return m.Sum(nil)
}

// derivedKey returns the P-256 key of id for the period starting at start.
func (ca *CA) derivedKey(id Identity, start time.Time) (*ecdsa.PrivateKey, error) {
	n := elliptic.P256().Params().N
	// A 256-bit HMAC output is a valid scalar (1 <= d < N) all but about
	// once in 2^32 tries; try the next counter then.
	for counter := uint32(0); counter < 16; counter++ {
		d := ca.derived("key", id, start, counter)
		if v := new(big.Int).SetBytes(d); v.Sign() > 0 && v.Cmp(n) < 0 {
			return ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		}
	}
	return nil, errors.New("no valid key derived") // never happens in practice
}

// derivedSerial returns a positive 127-bit serial number for id's
// certificate of the period.
func (ca *CA) derivedSerial(id Identity, start time.Time) *big.Int {
	b := ca.derived("serial", id, start, 0)[:16]
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, always 16 bytes
	return new(big.Int).SetBytes(b)
}

// deterministicSigner signs with RFC 6979 ECDSA (or PKCS#1 v1.5 RSA), so
// that signing the same certificate twice gives the same bytes.
type deterministicSigner struct{ crypto.Signer }

func (s deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.Signer.Sign(nil, digest, opts) // nil: RFC 6979 for ECDSA; RSA PKCS#1 v1.5 ignores it
}
