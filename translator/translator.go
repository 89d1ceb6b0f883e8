// Package translator turns the mesh model into Envoy resources for one
// proxy: clusters, endpoints, listeners and route configurations.
//
// Everything here is a pure function of (mesh.Snapshot, Proxy): no I/O, no
// goroutines, no globals. Resource names are owned by names.go. The
// translator builds what it can and joins the problems it meets with
// errors.Join; the cache validates the result before anything is published.
//
// translator imports mesh and Envoy's API types; never the cache, the xDS
// server or the watchers.
package translator

import (
	"errors"
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/minimesh/minimesh/mesh"
)

// Translate builds the resources of one proxy from a snapshot.
func Translate(snap *mesh.Snapshot, p Proxy, opts Options) (*Resources, error) {
	return NewIndex(snap, opts).Translate(p)
}

// Translate builds the resources of one proxy from an indexed snapshot.
func (ix *index) Translate(p Proxy) (*Resources, error) {
	var (
		res  *Resources
		errs []error
		v    = ix.viewFor(p)
	)
	switch {
	case p.Flavor == FlavorGRPC:
		res, errs = ix.translateGRPC(p)
	case p.Capture == CaptureTransparent:
		res, errs = ix.translateTransparent(p, v)
	default:
		res, errs = ix.translateEnvoy(p, v)
	}
	// The shared lists are sorted, and appended where they sort, so the
	// runs are marked first and sorting only checks the rest; if sorting
	// moved anything, the runs are marked again where they are now.
	ix.markShared(res, p, v)
	if res.sortByName() {
		res.shared = nil
		ix.markShared(res, p, v)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("proxy %s: %w", p.ID, err)
	}
	return res, nil
}

// translateEnvoy builds a sidecar's config in explicit mode: every outbound
// cluster of the mesh, one HTTP proxy listener on 127.0.0.1:15001 routing by
// Host, and an inbound listener per service port the workload serves.
func (ix *index) translateEnvoy(p Proxy, v *view) (*Resources, []error) {
	res := newResources()
	var errs []error

	rc, err := ix.sharedHTTPProxyRouteConfig(p, v)
	if err != nil {
		errs = append(errs, err)
	}
	res.Routes = append(res.Routes, rc)
	l, err := ix.sharedHTTPProxyListener()
	if err != nil {
		errs = append(errs, err)
	} else {
		res.Listeners = append(res.Listeners, l)
	}

	// Inbound first: "inbound|..." sorts before "outbound|...", so with the
	// shared, sorted outbound list after it the result needs no sorting.
	errs = append(errs, ix.addInbound(res, p)...)
	return res, append(errs, ix.addOutboundAndSecrets(res, p, v)...)
}

// addOutboundAndSecrets adds what every Envoy sidecar gets, in either
// capture mode: the outbound clusters of its view and their endpoints, and
// its secrets.
//
// A sidecar's cluster subscription is a wildcard: it gets every cluster of
// its view (the whole mesh unless a Sidecar scopes it), not only the ones
// its routes use today, so that adding a route never waits for a new
// cluster to warm.
func (ix *index) addOutboundAndSecrets(res *Resources, p Proxy, v *view) []error {
	out := ix.sharedEnvoyOutbound(p.hasIdentity(), v)
	res.Clusters = append(res.Clusters, out.clusters...)
	res.Endpoints = append(res.Endpoints, out.endpoints...)
	res.Secrets = append(res.Secrets, ix.secrets(p)...) // a copy: the list is shared, and res may be recycled
	return out.errs
}

// secrets are a sidecar's SDS secrets: its own certificate and the mesh
// roots. Only a registered workload has an identity, and it gets its own
// certificate and no other.
func (ix *index) secrets(p Proxy) []*tlsv3.Secret {
	if p.Workload == nil || p.Certificate == nil {
		return nil
	}
	build := func() []*tlsv3.Secret {
		return []*tlsv3.Secret{WorkloadCertSecret(p.Certificate.ChainPEM, p.Certificate.KeyPEM), RootCASecret(p.TrustBundlePEM)}
	}
	if len(p.Certificate.ChainPEM) == 0 || len(p.Certificate.KeyPEM) == 0 {
		return build() // no bytes to key on
	}
	key := secretsKey{&p.Certificate.ChainPEM[0], &p.Certificate.KeyPEM[0], string(p.TrustBundlePEM)}
	if s, ok := lookup(ix.carry, secretsOf, key); ok {
		return s
	}
	s := build()
	store(ix.carry, secretsOf, key, s)
	return s
}

// addClusters builds the given outbound clusters and their endpoints.
func (ix *index) addClusters(res *Resources, refs []clusterRef, flavor Flavor, identity bool) []error {
	var errs []error
	for _, ref := range refs {
		c, cla, err := ix.cluster(ref, flavor, identity)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Clusters = append(res.Clusters, c)
		if cla != nil {
			res.Endpoints = append(res.Endpoints, cla)
		}
	}
	return errs
}
