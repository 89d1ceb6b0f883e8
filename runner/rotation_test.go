package runner

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/minimesh/minimesh/internal/testlog"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/internal/synth"
)

// leafOf returns the workload certificate in a proxy's "default" secret.
func leafOf(t *testing.T, c *cache.Cache, node string) *x509.Certificate {
	t.Helper()
	snap := c.Get(node)
	if snap == nil {
		t.Fatal("no snapshot")
	}
	s, ok := snap.GetResources(resourcev3.SecretType)["default"].(*tlsv3.Secret)
	if !ok {
		t.Fatal("no default secret")
	}
	block, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestCertificatesRotateBeforeExpiry: with a 3 s lifetime, a sidecar's
// certificate is replaced (new serial, same identity) and pushed before the
// old one expires, with nothing restarted.
func TestCertificatesRotateBeforeExpiry(t *testing.T) {
	ca, err := certs.LoadOrCreate(certs.Options{Dir: t.TempDir(), CertLifetime: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(nil)
	r := New(c, testlog.New(t), Options{DefaultNamespace: "default", CA: ca})
	r.Update(context.Background(), build(t, string(synth.YAML(1, "default"))))
	node := &corev3.Node{Id: "svc-0000-v1.default", UserAgentName: "envoy"}
	if err := r.Connect(node); err != nil {
		t.Fatal(err)
	}
	first := leafOf(t, c, node.GetId())
	if got := first.URIs[0].String(); got != "spiffe://cluster.local/ns/default/sa/svc-0000" {
		t.Fatalf("certificate identity %s", got)
	}
	// Only this proxy's own identity is in its snapshot.
	if n := len(c.Get(node.GetId()).GetResources(resourcev3.SecretType)); n != 2 {
		t.Fatalf("%d secrets, want default and ROOTCA", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.RotateCertificates(ctx)
	for {
		leaf := leafOf(t, c, node.GetId())
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !time.Now().Before(first.NotAfter) {
				t.Fatalf("rotated only after the old certificate expired (%v)", first.NotAfter)
			}
			if leaf.URIs[0].String() != first.URIs[0].String() {
				t.Fatalf("identity changed on rotation: %s", leaf.URIs[0])
			}
			t.Logf("rotated %v before the old certificate's expiry", time.Until(first.NotAfter).Round(time.Millisecond))
			return
		}
		if time.Now().After(first.NotAfter) {
			t.Fatal("the certificate expired without being rotated")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
