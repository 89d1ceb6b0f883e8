package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minimesh/minimesh/internal/demoapp"
	"github.com/minimesh/minimesh/internal/testbed"
)

const sleepID = "spiffe://cluster.local/ns/default/sa/sleep"

// callOnce makes one RPC with a short deadline.
func callOnce(c *demoapp.Client) (version, seenAs string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.CallWithPeer(ctx)
}

// eventually polls cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3s (last: %s)", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMTLSWithProxylessGRPC: real gRPC-Go xDS servers and clients, with
// certificates from minimesh's CA and xDS over TLS.
func TestMTLSWithProxylessGRPC(t *testing.T) {
	m := testbed.StartMTLS(t, "STRICT")
	meshClient, err := demoapp.Dial("xds:///my-app", m.Bootstrap(t, "sleep.default", "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	defer meshClient.Close()
	plain, err := demoapp.DialDirect(m.Backends["v1"].Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	// STRICT: the mesh client gets through over mTLS and the server sees
	// its SPIFFE ID; a plaintext client is refused.
	eventually(t, "STRICT: mesh client served over mTLS", func() (bool, string) {
		_, seen, err := callOnce(meshClient)
		return err == nil && seen == sleepID, seen + " " + errText(err)
	})
	if _, _, err := callOnce(plain); err == nil {
		t.Fatal("STRICT: a plaintext client was served")
	}

	// Live flip to PERMISSIVE: plaintext clients are let in, the mesh client
	// keeps working (a proxyless gRPC server cannot serve TLS and plaintext
	// on one port, so under PERMISSIVE it serves plaintext to everyone).
	m.SetMode(t, "PERMISSIVE")
	eventually(t, "PERMISSIVE: plaintext client accepted", func() (bool, string) {
		_, seen, err := callOnce(plain)
		return err == nil && seen == "plaintext", seen + " " + errText(err)
	})
	eventually(t, "PERMISSIVE: mesh client still served", func() (bool, string) {
		_, seen, err := callOnce(meshClient)
		return err == nil, seen + " " + errText(err)
	})

	// And back to STRICT, live: plaintext refused again, the mesh client
	// back on mTLS, nothing restarted.
	m.SetMode(t, "STRICT")
	eventually(t, "STRICT again: plaintext refused", func() (bool, string) {
		_, _, err := callOnce(plain)
		return err != nil, "still served"
	})
	eventually(t, "STRICT again: mesh client over mTLS", func() (bool, string) {
		_, seen, err := callOnce(meshClient)
		return err == nil && seen == sleepID, seen + " " + errText(err)
	})
}

// TestMTLSWrongSANIsRefused: a client that expects another identity from
// the server refuses it.
func TestMTLSWrongSANIsRefused(t *testing.T) {
	m := testbed.StartMTLS(t, "STRICT")
	path := filepath.Join(m.Dir, "destination-rule.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(data), "spec:\n  host: my-app\n",
		"spec:\n  host: my-app\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n      subjectAltNames: [spiffe://cluster.local/ns/default/sa/not-my-app]\n", 1)
	if wrong == string(data) {
		t.Fatal("could not edit the DestinationRule")
	}
	if err := os.WriteFile(path, []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	client, err := demoapp.Dial("xds:///my-app", m.Bootstrap(t, "sleep.default", "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < 20; i++ {
		if _, _, err := callOnce(client); err == nil {
			t.Fatal("the client accepted a server whose SPIFFE ID is not the one it expects")
		} else if i == 19 {
			t.Logf("refused as expected: %v", err)
		}
	}

	// With the right SAN the same setup works: the refusal was the SAN.
	if err := os.WriteFile(path, []byte(strings.Replace(wrong, "sa/not-my-app", "sa/my-app", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	fresh, err := demoapp.Dial("xds:///my-app", m.Bootstrap(t, "sleep.default", "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	eventually(t, "right SAN: served", func() (bool, string) {
		_, seen, err := callOnce(fresh)
		return err == nil && seen == sleepID, seen + " " + errText(err)
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
