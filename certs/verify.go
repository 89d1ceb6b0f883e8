package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
)

// Verify checks a peer's chain (leaf first) against the trust bundle for the
// given usage and returns the peer's identity, taken from its single SPIFFE
// URI SAN. Used to authenticate xDS clients.
func (ca *CA) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 || chain[0] == nil {
		return Identity{}, errors.New("verify peer: no certificate presented")
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         ca.pool,
		Intermediates: inter,
		CurrentTime:   ca.now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return Identity{}, fmt.Errorf("verify peer certificate %s: %w", describe(leaf), err)
	}
	if leaf.IsCA {
		return Identity{}, fmt.Errorf("verify peer certificate %s: it is a CA certificate, not a workload's", describe(leaf))
	}
	if len(leaf.URIs) != 1 {
		return Identity{}, fmt.Errorf("verify peer certificate %s: has %d URI SANs, want exactly one SPIFFE ID", describe(leaf), len(leaf.URIs))
	}
	id, err := ParseSPIFFEID(leaf.URIs[0].String())
	if err != nil {
		return Identity{}, fmt.Errorf("verify peer certificate %s: %w", describe(leaf), err)
	}
	if id.TrustDomain != ca.trustDomain {
		return Identity{}, fmt.Errorf("verify peer certificate %s: trust domain %q is not this mesh's (%q)", describe(leaf), id.TrustDomain, ca.trustDomain)
	}
	return id, nil
}
