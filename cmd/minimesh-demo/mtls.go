package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/status"
)

// demoClientWorkload registers the demo's client as a workload, so that it
// has an identity (service account demo-client) and a certificate.
const demoClientWorkload = `---
# Added by minimesh-demo: the demo's gRPC client, so that it has an identity.
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: demo-client
spec:
  address: 127.0.0.1
  labels:
    app: demo-client
  serviceAccount: demo-client
`

// strictPolicy is the blog's PeerAuthentication: mesh-wide STRICT mTLS.
const strictPolicy = `# The blog's PeerAuthentication: mesh-wide STRICT mutual TLS.
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`

// playMTLS shows zero trust: a client in the mesh and one outside it call
// my-app; then the demo writes the blog's STRICT PeerAuthentication, and
// only the client with a mesh certificate keeps getting answers.
func (d *demo) playMTLS(ctx context.Context, phaseLen time.Duration) error {
	fmt.Fprint(d.out, `── step 5: Zero trust. Two clients call my-app: the demo client, which has a certificate
   from minimesh's CA (spiffe://cluster.local/ns/default/sa/demo-client), and a plaintext
   client from outside the mesh. No PeerAuthentication yet: PERMISSIVE, both get in.
   (A proxyless gRPC server cannot accept TLS and plaintext on one port, so under
   PERMISSIVE it serves plaintext to both; Envoy sidecars accept both on one port.)
`)
	if err := d.watchClients(ctx, phaseLen); err != nil {
		return err
	}
	before := d.ackedListener("my-app-v1.default")
	start := time.Now()
	if err := os.WriteFile(filepath.Join(d.dir, "peer-authentication.yaml"), []byte(strictPolicy), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "── step 6: wrote peer-authentication.yaml: the blog's mesh-wide STRICT mTLS.")
	for time.Since(start) < 5*time.Second {
		if v := d.ackedListener("my-app-v1.default"); v != "" && v != before {
			fmt.Fprintf(d.out, "   my-app's servers acknowledged their mTLS-only listener %v after the edit\n",
				time.Since(start).Round(time.Millisecond))
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := d.watchClients(ctx, phaseLen); err != nil {
		return err
	}
	fmt.Fprint(d.out, `
What happened: under STRICT, minimesh gave the gRPC servers a listener whose filter chain
requires a client certificate that chains to the mesh CA (DownstreamTlsContext with
require_client_certificate), and gave the client clusters an UpstreamTlsContext that checks
the server's SPIFFE ID. The plaintext client cannot complete a handshake any more; the mesh
client's calls are encrypted, and the server sees who called. See examples/mtls/README.md.
`)
	return nil
}

// watchClients prints, once a second, how each client fares.
func (d *demo) watchClients(ctx context.Context, phaseLen time.Duration) error {
	for s := 0; s < int(phaseLen/time.Second); s++ {
		end := time.Now().Add(time.Second)
		var meshOK, meshFail, plainOK, plainFail int
		seen, lastErr := "", ""
		for time.Now().Before(end) {
			if ctx.Err() != nil {
				fmt.Fprintln(d.out, "\ninterrupted; stopping cleanly.")
				return nil
			}
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if _, who, err := d.client.CallWithPeer(cctx); err == nil {
				meshOK, seen = meshOK+1, who
			} else {
				meshFail++
			}
			if _, _, err := d.plain.CallWithPeer(cctx); err == nil {
				plainOK++
			} else {
				plainFail, lastErr = plainFail+1, shortError(err)
			}
			cancel()
			time.Sleep(20 * time.Millisecond)
		}
		line := fmt.Sprintf("   mesh client: %3d ok %3d failed (server saw %s) | plaintext client: %3d ok %3d failed",
			meshOK, meshFail, seen, plainOK, plainFail)
		if plainFail > 0 {
			line += " (" + lastErr + ")"
		}
		fmt.Fprintln(d.out, line)
	}
	return nil
}

// shortError keeps the cause of a gRPC error for a one-line display.
func shortError(err error) string {
	s := status.Convert(err).Message()
	if i := strings.LastIndex(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	s = strings.Trim(s, `"`)
	if len(s) > 70 {
		s = s[:70] + "..."
	}
	return s
}

// ackedListener is the listener version a proxy last accepted.
func (d *demo) ackedListener(node string) string {
	p, ok := d.cp.Server.Tracker.Proxy(node)
	if !ok {
		return ""
	}
	if ts := p.Types[resourcev3.ListenerType]; ts != nil {
		return ts.AckedVersion
	}
	return ""
}
