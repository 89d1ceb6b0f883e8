package runner

// Attacks on the xDS server, each of which must be refused, logged and
// counted: a node ID claiming another workload, a request for another
// workload's secret, a client certificate from a foreign CA, an expired
// certificate, no certificate, and plaintext on the TLS port.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/minimesh/minimesh/certs"
)

// secureCP starts serve on the canary example with TLS xDS.
func secureCP(t *testing.T) (*ControlPlane, string, *observer.ObservedLogs) {
	t.Helper()
	src, err := filepath.Abs("../examples/canary")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	caDir := t.TempDir()
	// Create the root "three hours ago", so that the expired-certificate
	// case can be issued by this very CA.
	if _, err := certs.LoadOrCreate(certs.Options{Dir: caDir, Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := Start(ctx, Config{ConfigDir: dir, XDSAddress: "127.0.0.1:0", CADir: caDir, Log: zap.New(core)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(); cancel() })
	return cp, caDir, logs
}

// clientTLS is a client certificate for an identity from the CA in caDir
// (or from another CA), trusting the mesh roots.
func clientTLS(t *testing.T, caDir string, sa string, now func() time.Time) *tls.Config {
	t.Helper()
	ca, err := certs.LoadOrCreate(certs.Options{Dir: caDir, Now: now, CertLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(certs.Identity{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: sa})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.TrustBundlePEM())
	return &tls.Config{Certificates: []tls.Certificate{tc}, RootCAs: roots, ServerName: "localhost"}
}

// ask opens an ADS stream as node and requests one type; it returns the
// first response or the error that ended the stream.
func ask(t *testing.T, addr string, creds credentials.TransportCredentials, node, typeURL string, names ...string) (*discoveryv3.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node, UserAgentName: "envoy"},
		TypeUrl: typeURL, ResourceNames: names}); err != nil {
		return nil, err
	}
	return stream.Recv()
}

// eventually reports whether cond became true within 2 s. The server
// counts and logs a refused connection on its own goroutine, possibly after
// the client already saw its error (with TLS 1.3 the client finishes its
// handshake before the server has checked the client's certificate).
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logged reports whether a log line containing all of parts was written
// (waiting up to 2 s, see eventually).
func logged(logs *observer.ObservedLogs, parts ...string) bool {
	return eventually(func() bool { return loggedNow(logs, parts...) })
}

func loggedNow(logs *observer.ObservedLogs, parts ...string) bool {
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestXDSAuthentication(t *testing.T) {
	cp, caDir, logs := secureCP(t)
	addr := cp.Addr.String()
	metrics := cp.Server.Metrics

	// The real workload, with its own identity: served, its own secrets.
	good := credentials.NewTLS(clientTLS(t, caDir, "my-app", nil))
	resp, err := ask(t, addr, good, "my-app-v1.default", resourcev3.SecretType, "default", "ROOTCA")
	if err != nil {
		t.Fatalf("the workload itself was refused: %v", err)
	}
	if len(resp.GetResources()) != 2 {
		t.Fatalf("got %d secrets, want default and ROOTCA", len(resp.GetResources()))
	}

	t.Run("node ID of another workload", func(t *testing.T) {
		other := credentials.NewTLS(clientTLS(t, caDir, "intruder", nil))
		_, err := ask(t, addr, other, "my-app-v1.default", resourcev3.SecretType, "default")
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("got %v, want PermissionDenied", err)
		}
		if !eventually(func() bool { return metrics.Refused("identity") >= 1 }) || !logged(logs, "xDS stream refused", "my-app-v1.default", "sa/intruder") {
			t.Fatal("not counted or not logged")
		}
	})
	t.Run("another secret", func(t *testing.T) {
		_, err := ask(t, addr, good, "my-app-v1.default", resourcev3.SecretType, "default", "my-app-v2-key")
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("got %v, want PermissionDenied", err)
		}
		if !eventually(func() bool { return metrics.Refused("secret_name") >= 1 }) || !logged(logs, "not the proxy's own", "my-app-v2-key") {
			t.Fatal("not counted or not logged")
		}
	})
	t.Run("foreign CA", func(t *testing.T) {
		foreign := clientTLS(t, t.TempDir(), "my-app", nil)
		foreign.RootCAs = clientTLS(t, caDir, "my-app", nil).RootCAs // trusts our server, presents a foreign cert
		_, err := ask(t, addr, credentials.NewTLS(foreign), "my-app-v1.default", resourcev3.ClusterType)
		if err == nil {
			t.Fatal("a certificate from a foreign CA was accepted")
		}
		if !logged(logs, "xDS connection refused", "tls_handshake") {
			t.Fatal("not logged")
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		past := func() time.Time { return time.Now().Add(-2 * time.Hour) } // issued 2h ago for 1h
		_, err := ask(t, addr, credentials.NewTLS(clientTLS(t, caDir, "my-app", past)), "my-app-v1.default", resourcev3.ClusterType)
		if err == nil {
			t.Fatal("an expired certificate was accepted")
		}
		if !logged(logs, "xDS connection refused", "expired") {
			t.Fatal("not logged with the reason")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		noCert := clientTLS(t, caDir, "my-app", nil)
		noCert.Certificates = nil
		before := metrics.Refused("tls_handshake")
		if _, err := ask(t, addr, credentials.NewTLS(noCert), "client.default", resourcev3.ClusterType); err == nil {
			t.Fatal("a client without certificate was accepted")
		}
		if !eventually(func() bool { return metrics.Refused("tls_handshake") > before }) {
			t.Fatal("the refused handshake was not counted")
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		before := metrics.Refused("not_tls")
		if _, err := ask(t, addr, insecure.NewCredentials(), "client.default", resourcev3.ClusterType); err == nil {
			t.Fatal("plaintext xDS was accepted on the TLS port")
		}
		if !eventually(func() bool { return metrics.Refused("not_tls") > before }) {
			t.Fatal("plaintext connection not counted")
		}
	})
	if n := metrics.Refused("tls_handshake"); n < 3 {
		t.Fatalf("%v refused handshakes counted, want at least 3 (foreign CA, expired, no certificate)", n)
	}
}
