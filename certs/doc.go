// Package certs is minimesh's certificate authority. It owns the CA's root
// (generated on first start and persisted in a directory, or supplied by the
// user in Istio's plug-in layout), the trust bundle (which may hold several
// roots so that a root can be rotated), workload certificates carrying SPIFFE
// IDs (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>), their
// rotation, and the verification of peer certificates for authenticated xDS.
//
// It uses only the standard library's crypto packages and imports no Envoy or
// Kubernetes code: turning certificates into SDS secrets is the translator's job.
//
// Private keys never appear in logs, errors or String() output, and key files
// are written 0600.
package certs

// Files in the CA directory (Options.Dir).
const (
	// Istio's plug-in layout, supplied by the user.
	CACertFile    = "ca-cert.pem"    // signing certificate (root or intermediate)
	CAKeyFile     = "ca-key.pem"     // its private key
	RootCertFile  = "root-cert.pem"  // trust anchor(s); also the generated root's certificate
	CertChainFile = "cert-chain.pem" // chain from ca-cert.pem up to the root

	// minimesh's own generated root.
	RootKeyFile = "root-key.pem"

	// ExtraRootsFile holds additional trusted roots (root rotation).
	ExtraRootsFile = "extra-roots.pem"
)

// Files written by WriteFiles for gRPC's file_watcher certificate provider.
const (
	KeyFileName   = "key.pem"
	ChainFileName = "cert-chain.pem"
	RootsFileName = "root-cert.pem"
)
