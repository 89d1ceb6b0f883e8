package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/translator"
	"github.com/minimesh/minimesh/xds"
)

// Authorize refuses an xDS client whose certificate does not match the node
// it claims to be (xds.Hooks). A node ID that names a workload must come
// with that workload's identity (namespace and service account); a node
// that names no workload (a client outside the mesh) needs a certificate
// from the mesh CA of the same namespace. Without RequireAuthentication
// (--insecure-xds) every client is accepted.
func (r *Runner) Authorize(node *corev3.Node, peer xds.Peer) error {
	if !r.requireAuth {
		return nil
	}
	if !peer.Authenticated {
		return errors.New("no client certificate: xDS clients must authenticate with a certificate issued by minimesh (minimesh certs issue)")
	}
	id, err := certs.ParseSPIFFEID(peer.SPIFFEID)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	px := r.index.NewProxy(node, r.defaultNamespace)
	if w := px.Workload; w != nil {
		if w.Namespace != id.Namespace || w.ServiceAccount != id.ServiceAccount {
			return fmt.Errorf("node %q is workload %s/%s with service account %q, but the client certificate is %s",
				node.GetId(), w.Namespace, w.Name, w.ServiceAccount, peer.SPIFFEID)
		}
	} else if px.Namespace != id.Namespace {
		return fmt.Errorf("node %q is a client in namespace %q, but the client certificate is %s", node.GetId(), px.Namespace, peer.SPIFFEID)
	}
	r.identities[node.GetId()] = peer.SPIFFEID
	return nil
}

// addCertificate gives an Envoy sidecar of a registered workload its own
// certificate (served over SDS). gRPC reads its certificates from files and
// clients outside the mesh have no identity: they get none.
func (r *Runner) addCertificate(px *translator.Proxy) error {
	if r.store == nil || px.Workload == nil || px.Flavor != translator.FlavorEnvoy {
		return nil
	}
	id := certs.Identity{TrustDomain: r.ca.TrustDomain(), Namespace: px.Workload.Namespace, ServiceAccount: px.Workload.ServiceAccount}
	if authn, ok := r.identities[px.ID]; r.requireAuth && ok && authn != id.SPIFFEID() {
		// The workload's identity changed under a connected proxy (its
		// service account was edited): the proxy proved another identity,
		// so it must not get this one's key. It gets it on reconnecting.
		return fmt.Errorf("the workload is now %s but the proxy authenticated as %s; reconnect to get the new identity",
			id.SPIFFEID(), authn)
	}
	c, err := r.store.Get(id)
	if err != nil {
		return err
	}
	px.Certificate = &translator.Certificate{ChainPEM: c.ChainPEM, KeyPEM: c.KeyPEM}
	px.TrustBundlePEM = r.ca.TrustBundlePEM()
	return nil
}

// RotateCertificates re-issues workload certificates as they come due and
// pushes them, until ctx ends: proxies get a new certificate well before
// the old one expires, without restarting anything.
func (r *Runner) RotateCertificates(ctx context.Context) {
	if r.store == nil {
		return
	}
	for {
		// Wake at the next refresh, and at least every few seconds: a
		// proxy that connects meanwhile adds certificates to the store.
		wait := 5 * time.Second
		next, ok := r.store.NextRefresh()
		if ok {
			wait = min(max(time.Until(next), 100*time.Millisecond), wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if next, ok := r.store.NextRefresh(); !ok || time.Now().Before(next) {
			continue
		}
		r.mu.Lock()
		pushed := r.rebuildAll(ctx)
		r.mu.Unlock()
		if pushed > 0 {
			r.log.Info("workload certificates rotated", zap.Int("proxies", pushed))
		}
	}
}
