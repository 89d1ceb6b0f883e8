// Package demoapp is the application of the canary demo and the end-to-end
// tests: a proxyless gRPC backend that says which version it is, and a
// proxyless gRPC client that calls it through xDS. Both use gRPC-Go's own
// xDS client, so what they do is what a real proxyless gRPC service does.
//
// The service is gRPC's standard test service (grpc.testing.TestService),
// so clients in any language can call it: every response carries the
// version in SimpleResponse.server_id and in the header "x-served-by".
package demoapp

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"
)

// VersionHeader is the response header that names the version that answered.
const VersionHeader = "x-served-by"

// PeerHeader is the response header in which a backend says who called it:
// the SPIFFE ID of the client's certificate, or "plaintext".
const PeerHeader = "x-peer-identity"

// Backend is one version of the application, serving on an address given
// by xDS (a gRPC server listener).
type Backend struct {
	Version string
	Addr    net.Addr
	server  *xds.GRPCServer
}

// StartBackend listens on addr and serves version, configured by the xDS
// server named in bootstrap (a gRPC xDS bootstrap JSON). The server answers
// only once minimesh has sent its listener.
func StartBackend(version, addr string, bootstrap []byte) (*Backend, error) {
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return nil, err
	}
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting(bootstrap))
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", version, err)
	}
	testgrpc.RegisterTestServiceServer(srv, &testService{version: version})
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", version, err)
	}
	go func() { _ = srv.Serve(lis) }()
	return &Backend{Version: version, Addr: lis.Addr(), server: srv}, nil
}

// Stop stops the backend.
func (b *Backend) Stop() { b.server.Stop() }

// testService answers UnaryCall with its version.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	version string
}

func (s *testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, s.version, PeerHeader, peerIdentity(ctx)))
	host, _ := os.Hostname()
	return &testgrpc.SimpleResponse{ServerId: s.version, Hostname: host}, nil
}

func (s *testService) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, s.version))
	return &testgrpc.Empty{}, nil
}

// peerIdentity is the SPIFFE ID of the calling client, from its TLS
// certificate, or "plaintext".
func peerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
		if uris := info.State.PeerCertificates[0].URIs; len(uris) == 1 {
			return uris[0].String()
		}
		return "tls without SPIFFE ID"
	}
	return "plaintext"
}

// Client calls the application through xDS ("xds:///my-app").
type Client struct {
	conn *grpc.ClientConn
	stub testgrpc.TestServiceClient
}

// Dial connects to target with gRPC's xDS resolver, configured by
// bootstrap. No connection is made until the first call.
func Dial(target string, bootstrap []byte) (*Client, error) {
	resolver, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("xds bootstrap: %w", err)
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, grpc.WithResolvers(resolver), grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return &Client{conn: conn, stub: testgrpc.NewTestServiceClient(conn)}, nil
}

// DialDirect connects to one backend address in plaintext, without xDS:
// what a client outside the mesh does.
func DialDirect(addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Client{conn: conn, stub: testgrpc.NewTestServiceClient(conn)}, nil
}

// Call makes one RPC and returns the version that answered.
func (c *Client) Call(ctx context.Context) (string, error) {
	v, _, err := c.CallWithPeer(ctx)
	return v, err
}

// CallWithPeer makes one RPC and returns the version that answered and the
// identity the backend saw for this client.
func (c *Client) CallWithPeer(ctx context.Context) (version, seenAs string, err error) {
	var header metadata.MD
	resp, err := c.stub.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true}, grpc.Header(&header))
	if err != nil {
		return "", "", err
	}
	if v := header.Get(PeerHeader); len(v) > 0 {
		seenAs = v[0]
	}
	return resp.GetServerId(), seenAs, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
