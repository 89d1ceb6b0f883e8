package bootstrap

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"

	"github.com/minimesh/minimesh/certs"
)

// testCA is the CA of these tests, in a directory of its own.
func testCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.LoadOrCreate(certs.Options{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeWorkloadCerts writes the files of greeter.default's certificate
// (service account greeter) into dir, as `minimesh certs issue` does, and
// returns the CA that issued it.
func writeWorkloadCerts(t *testing.T, dir string) *certs.CA {
	t.Helper()
	ca := testCA(t)
	c, err := ca.Issue(certs.Identity{Namespace: "default", ServiceAccount: "greeter"})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles(dir, c, ca.TrustBundlePEM()); err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestGRPCGoXDSOverMutualTLS runs a gRPC-Go xDS server from a bootstrap with
// "tls" channel credentials against a TLS xDS server that requires a client
// certificate: the ADS stream arrives carrying the workload's SPIFFE ID. It
// also shows what gRPC checks of the xDS server's certificate: that it
// chains to the roots in the certificate directory and names the host of
// server_uri.
func TestGRPCGoXDSOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := writeWorkloadCerts(t, dir)
	other := testCA(t)

	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		srv := startXDSServer(t, ca, ca, []string{"localhost"})
		got := srv.waitStream(t, bootGRPCServer(t, "localhost", srv.port, dir))
		if want := "spiffe://cluster.local/ns/default/sa/greeter"; got.spiffeID != want {
			t.Errorf("client certificate URI SAN = %q, want %q", got.spiffeID, want)
		}
		if got.nodeID != "greeter.default" {
			t.Errorf("node ID = %q, want greeter.default", got.nodeID)
		}
	})
	t.Run("server certificate without the dialed name", func(t *testing.T) {
		t.Parallel()
		srv := startXDSServer(t, ca, ca, []string{"localhost"})
		err := srv.waitHandshakeError(t, bootGRPCServer(t, "127.0.0.1", srv.port, dir))
		t.Logf("handshake error seen by the server: %v", err)
	})
	t.Run("server certificate from another CA", func(t *testing.T) {
		t.Parallel()
		srv := startXDSServer(t, other, ca, []string{"localhost"})
		err := srv.waitHandshakeError(t, bootGRPCServer(t, "localhost", srv.port, dir))
		t.Logf("handshake error seen by the server: %v", err)
	})
}

// bootGRPCServer starts a gRPC-Go xDS-enabled server from the bootstrap for
// greeter.default that reaches the xDS server at host:port over mutual TLS
// with the certificates in dir, so that it opens an ADS stream.
func bootGRPCServer(t *testing.T, host, port, dir string) func() {
	t.Helper()
	for _, env := range []string{"GRPC_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP_CONFIG"} {
		if os.Getenv(env) != "" {
			t.Skipf("%s is set: gRPC-Go would fall back to it", env)
		}
	}
	b, err := GRPC(GRPCOptions{NodeID: "greeter.default", XDSAddress: net.JoinHostPort(host, port), CertDir: dir, XDSTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := xds.NewGRPCServer(xds.BootstrapContentsForTesting(b))
	if err != nil {
		t.Fatalf("gRPC-Go refused the bootstrap: %v\n%s", err, b)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis) //nolint:errcheck // ends with Stop
	return s.Stop
}

// xdsServer is a TLS xDS server that requires client certificates and
// reports the ADS streams it receives and the handshakes that fail.
type xdsServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	port       string
	streams    chan stream
	handshakes chan error
}

// stream is what the server learnt from one ADS stream.
type stream struct{ spiffeID, nodeID string }

// startXDSServer serves xDS with a certificate for names from serverCA, and
// accepts client certificates that chain to clientCA's roots.
func startXDSServer(t *testing.T, serverCA, clientCA *certs.CA, names []string) *xdsServer {
	t.Helper()
	c, err := serverCA.IssueServer("istio-system", names, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	for _, r := range clientCA.TrustBundle() {
		clients.AddCert(r)
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS12,
	})
	srv := &xdsServer{streams: make(chan stream, 10), handshakes: make(chan error, 10)}
	g := grpc.NewServer(grpc.Creds(reportingCreds{creds, srv.handshakes}))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, srv.port, _ = net.SplitHostPort(lis.Addr().String())
	go g.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(g.Stop)
	return srv
}

// StreamAggregatedResources reports who opened the stream and keeps it open.
func (s *xdsServer) StreamAggregatedResources(ads discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	req, err := ads.Recv()
	if err != nil {
		return err
	}
	var got stream
	got.nodeID = req.GetNode().GetId()
	if p, ok := peer.FromContext(ads.Context()); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			if uris := info.State.PeerCertificates[0].URIs; len(uris) == 1 {
				got.spiffeID = uris[0].String()
			}
		}
	}
	s.streams <- got
	<-ads.Context().Done()
	return nil
}

// waitStream waits for the first ADS stream, then stops the client.
func (s *xdsServer) waitStream(t *testing.T, stop func()) stream {
	t.Helper()
	defer stop()
	select {
	case got := <-s.streams:
		return got
	case err := <-s.handshakes:
		t.Fatalf("TLS handshake failed: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no ADS stream within 20s")
	}
	return stream{}
}

// waitHandshakeError waits for a failed handshake, then stops the client;
// no ADS stream may arrive.
func (s *xdsServer) waitHandshakeError(t *testing.T, stop func()) error {
	t.Helper()
	defer stop()
	select {
	case got := <-s.streams:
		t.Fatalf("ADS stream accepted from %+v; want the client to refuse the server's certificate", got)
	case err := <-s.handshakes:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("no handshake within 20s")
	}
	return nil
}

// reportingCreds passes on the errors of server handshakes.
type reportingCreds struct {
	credentials.TransportCredentials
	errs chan<- error
}

func (c reportingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		select {
		case c.errs <- err:
		default:
		}
	}
	return out, info, err
}

func (c reportingCreds) Clone() credentials.TransportCredentials {
	return reportingCreds{c.TransportCredentials.Clone(), c.errs}
}
