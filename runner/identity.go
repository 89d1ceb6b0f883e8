package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"

	"github.com/minimesh/minimesh/certs"
	"github.com/minimesh/minimesh/kubeauth/account"
	"github.com/minimesh/minimesh/translator"
	"github.com/minimesh/minimesh/xds"
)

// Authorize refuses an xDS client whose identity does not match the node
// it claims to be (xds.Hooks). The identity is a client certificate from
// the mesh CA, or, when a TokenReviewer is set (Kubernetes), a
// service-account token. A node ID that names a workload must come with
// that workload's namespace and service account; a node that names no
// workload (a client outside the mesh) must be of the same namespace.
// Without RequireAuthentication (--insecure-xds) every client is accepted.
func (r *Runner) Authorize(node *corev3.Node, peer xds.Peer) error {
	if !r.requireAuth {
		return nil
	}
	id, how, err := r.peerIdentity(peer)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	px := r.index.NewProxy(node, r.defaultNamespace)
	if w := px.Workload; w != nil {
		if w.Namespace != id.Namespace || w.ServiceAccount != id.ServiceAccount {
			return fmt.Errorf("node %q is workload %s/%s with service account %q, but the %s is %s",
				node.GetId(), w.Namespace, w.Name, w.ServiceAccount, how, id.SPIFFEID())
		}
	} else if px.Namespace != id.Namespace {
		return fmt.Errorf("node %q is a client in namespace %q, but the %s is %s", node.GetId(), px.Namespace, how, id.SPIFFEID())
	}
	r.identities[node.GetId()] = id.SPIFFEID()
	return nil
}

// peerIdentity returns who the client proved to be, and how ("client
// certificate", "service-account token").
func (r *Runner) peerIdentity(peer xds.Peer) (certs.Identity, string, error) {
	if peer.Authenticated {
		id, err := certs.ParseSPIFFEID(peer.SPIFFEID)
		if err != nil {
			return id, "", fmt.Errorf("client certificate: %w", err)
		}
		return id, "client certificate", nil
	}
	if r.tokens == nil {
		return certs.Identity{}, "", errors.New("no client certificate: xDS clients must authenticate with a certificate issued by minimesh (minimesh certs issue)")
	}
	if peer.Token == "" {
		return certs.Identity{}, "", errors.New("no client certificate and no service-account token: injected proxies send their projected token (audience " + account.Audience + ")")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := r.tokens.Review(ctx, peer.Token)
	if err != nil {
		return certs.Identity{}, "", fmt.Errorf("service-account token: %w", err)
	}
	td := certs.DefaultTrustDomain
	if r.ca != nil {
		td = r.ca.TrustDomain()
	}
	return certs.Identity{TrustDomain: td, Namespace: sa.Namespace, ServiceAccount: sa.ServiceAccount}, "service-account token", nil
}

// addCertificate gives an Envoy sidecar of a registered workload its own
// certificate (served over SDS). gRPC reads its certificates from files and
// clients outside the mesh have no identity: they get none. authenticated
// is the SPIFFE ID the proxy proved when it connected ("" if none).
func (r *Runner) addCertificate(px *translator.Proxy, authenticated string) error {
	if r.store == nil || px.Workload == nil || px.Flavor != translator.FlavorEnvoy {
		return nil
	}
	id := certs.Identity{TrustDomain: r.ca.TrustDomain(), Namespace: px.Workload.Namespace, ServiceAccount: px.Workload.ServiceAccount}
	if authn := authenticated; r.requireAuth && authn != "" && authn != id.SPIFFEID() {
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
		_, pushed := r.rebuildAll(ctx)
		if pushed > 0 {
			r.log.Info("workload certificates rotated", zap.Int("proxies", pushed))
		}
		// Every connected proxy now has a certificate that is not due:
		// those still due belong to identities no proxy uses any more.
		r.store.ForgetDue()
	}
}
