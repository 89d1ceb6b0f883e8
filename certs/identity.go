package certs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Identity is a workload identity.
type Identity struct{ TrustDomain, Namespace, ServiceAccount string }

// SPIFFEID returns the identity as "spiffe://<td>/ns/<ns>/sa/<sa>".
func (id Identity) SPIFFEID() string {
	return "spiffe://" + id.TrustDomain + id.path()
}

// URI returns the SPIFFE ID as a URL, the form an x509 URI SAN takes.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: id.path()}
}

// String returns the SPIFFE ID.
func (id Identity) String() string { return id.SPIFFEID() }

func (id Identity) path() string {
	return "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// Validate reports whether every part of the identity is present and uses
// only characters a SPIFFE ID allows.
func (id Identity) Validate() error {
	if err := validateTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	if err := validateSegment("namespace", id.Namespace); err != nil {
		return err
	}
	return validateSegment("service account", id.ServiceAccount)
}

// maxSPIFFEIDLen is the SPIFFE specification's limit on an ID's length.
const maxSPIFFEIDLen = 2048

// ParseSPIFFEID parses "spiffe://<td>/ns/<ns>/sa/<sa>" strictly: lowercase
// scheme and trust domain, no port, user, query or fragment, no percent
// encoding, and a path of exactly four non-empty segments.
func ParseSPIFFEID(s string) (Identity, error) {
	if s == "" {
		return Identity{}, errors.New("invalid SPIFFE ID: empty")
	}
	if len(s) > maxSPIFFEIDLen {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID: longer than %d bytes", maxSPIFFEIDLen)
	}
	fail := func(format string, args ...any) (Identity, error) {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: %s", s, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return fail(`must start with "spiffe://"`)
	}
	td, path, ok := strings.Cut(rest, "/")
	if err := validateTrustDomain(td); err != nil {
		return fail("%v", err)
	}
	parts := strings.Split(path, "/")
	if !ok || len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" {
		return fail("path must be /ns/<namespace>/sa/<service-account>")
	}
	id := Identity{TrustDomain: td, Namespace: parts[1], ServiceAccount: parts[3]}
	if err := validateSegment("namespace", id.Namespace); err != nil {
		return fail("%v", err)
	}
	if err := validateSegment("service account", id.ServiceAccount); err != nil {
		return fail("%v", err)
	}
	return id, nil
}

// validateTrustDomain applies the SPIFFE rules for trust domain names:
// lowercase letters, digits, '.', '-' and '_'.
func validateTrustDomain(td string) error {
	if td == "" {
		return errors.New("trust domain is empty")
	}
	for _, r := range td {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("trust domain %q contains %q (allowed: lowercase letters, digits, '.', '-', '_')", td, r)
		}
	}
	return nil
}

// validateSegment applies the SPIFFE rules for path segments: letters,
// digits, '.', '-' and '_', and neither "." nor "..".
func validateSegment(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if v == "." || v == ".." {
		return fmt.Errorf("%s %q is not allowed", what, v)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%s %q contains %q (allowed: letters, digits, '.', '-', '_')", what, v, r)
		}
	}
	return nil
}
