// Package bootstrap writes the files a proxy needs before it can talk to
// minimesh: the Envoy bootstrap (node identity, admin listener, and a static
// cluster that reaches minimesh's xDS server over ADS) and the gRPC xDS
// bootstrap that proxyless gRPC clients and servers read from
// GRPC_XDS_BOOTSTRAP.
//
// Everything else a proxy runs with arrives later over xDS. This package
// imports only the Envoy API protos; it knows nothing about the mesh model,
// the translator or the xDS server.
package bootstrap
