// Package bootstrap writes the files a proxy needs before it can talk to
// minimesh: the Envoy bootstrap (node identity, admin listener, and a static
// cluster that reaches minimesh's xDS server over ADS) and the gRPC xDS
// bootstrap that proxyless gRPC clients and servers read from
// GRPC_XDS_BOOTSTRAP.
//
// The connection to minimesh is mutual TLS when the options ask for it
// (XDSTLS), with the workload certificate files that `minimesh certs issue`
// writes (CertDir); otherwise it is plaintext and authenticates nobody. The
// gRPC bootstrap also defines the file_watcher certificate provider over the
// same files, which the TLS settings minimesh sends to gRPC refer to.
//
// Everything else a proxy runs with arrives later over xDS. This package
// imports only the Envoy API protos and the names of the certificate files
// from certs; it knows nothing about the mesh model, the translator or the
// xDS server.
package bootstrap
