package translator

// What a proxy gets for itself (its inbound listeners and clusters, its
// secrets) is rebuilt on every change, for every proxy, although a change
// rarely touches it: an endpoint added to one service does not change any
// other workload's inbound listener. An index made with NewIndexFrom takes
// these messages over from the previous index when their inputs are the
// same, so that the very same (immutable) messages are handed out again,
// and the cache, which remembers resources by identity, does not encode and
// validate them again either.
//
// Only what the previous index handed out is carried over: entries that a
// snapshot no longer uses are dropped with it.

import (
	"reflect"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/minimesh/minimesh/mesh"
)

// carry holds the per-proxy messages an index handed out, by their inputs.
type carry struct {
	mu       sync.Mutex
	prev     *carry // the previous index's; nil once this one is complete
	inbound  map[inboundKey]builtInbound
	secrets  map[secretsKey][]*tlsv3.Secret
	virtuals map[string]builtVirtualInbound
}

// inboundKey is everything an explicit inbound listener depends on.
type inboundKey struct {
	bind string
	in   inboundPort
}

type builtInbound struct {
	listener *listenerv3.Listener
	cluster  *clusterv3.Cluster
}

// secretsKey: a workload's secrets depend on its certificate and key (the
// same bytes, at the same address, until the certificate is re-issued) and
// the trust bundle.
type secretsKey struct {
	chain, key *byte
	bundle     string
}

// builtVirtualInbound is a transparent sidecar's virtualInbound and the
// clusters of its ports, keyed by its ports and modes.
type builtVirtualInbound struct {
	listener *listenerv3.Listener
	clusters []*clusterv3.Cluster
	errs     []error
}

func newCarry(prev *carry) *carry {
	c := &carry{prev: prev, inbound: map[inboundKey]builtInbound{}, secrets: map[secretsKey][]*tlsv3.Secret{},
		virtuals: map[string]builtVirtualInbound{}}
	if prev != nil {
		prev.mu.Lock()
		prev.prev = nil // keep one generation back, never a chain
		prev.mu.Unlock()
	}
	return c
}

// lookup finds key in this generation, or else in the previous one (and
// then keeps it in this one).
func lookup[K comparable, V any](c *carry, pick func(*carry) map[K]V, key K) (V, bool) {
	c.mu.Lock()
	v, ok := pick(c)[key]
	prev := c.prev
	c.mu.Unlock()
	if ok || prev == nil {
		return v, ok
	}
	prev.mu.Lock()
	v, ok = pick(prev)[key]
	prev.mu.Unlock()
	if ok {
		c.mu.Lock()
		pick(c)[key] = v
		c.mu.Unlock()
	}
	return v, ok
}

func store[K comparable, V any](c *carry, pick func(*carry) map[K]V, key K, v V) {
	c.mu.Lock()
	pick(c)[key] = v
	c.mu.Unlock()
}

func inboundOf(c *carry) map[inboundKey]builtInbound     { return c.inbound }
func secretsOf(c *carry) map[secretsKey][]*tlsv3.Secret  { return c.secrets }
func virtualsOf(c *carry) map[string]builtVirtualInbound { return c.virtuals }

// When the only difference between two snapshots is in the endpoints (a
// workload added, removed or relabeled, a pod turning ready), most of what
// the previous index built still holds:
//   - route configurations, shared by every sidecar of a view and
//     namespace, do not depend on endpoints at all;
//   - an outbound cluster and its endpoints depend on the endpoints of its
//     own service only (the cluster through their identities and mTLS
//     modes), so those of every service whose endpoints are the same are
//     still right.
// The new index takes them over as they are. With 1000 Sidecar-scoped
// views, an endpoint change then rebuilds and encodes the clusters of one
// service, not 1000 route configurations and every imported cluster.

// carryShared takes over prev's route configurations and the outbound
// clusters of unchanged services if snap differs from prev's snapshot
// only in endpoints and workloads.
func (ix *index) carryShared(prev *index) {
	if prev.trustDomain != ix.trustDomain || !endpointsOnly(prev.snap, ix.snap) {
		return
	}
	// The same Sidecars, in the same order: the new snapshot's stand for
	// the old ones in the keys.
	sidecar := make(map[*mesh.Sidecar]*mesh.Sidecar, len(ix.snap.Sidecars)+1)
	sidecar[nil] = nil
	for i, sc := range prev.snap.Sidecars {
		sidecar[sc] = ix.snap.Sidecars[i]
	}
	rekey := func(k viewKey) viewKey { return viewKey{sidecar[k.sidecar], k.namespace} }
	prev.memo.mu.Lock()
	defer prev.memo.mu.Unlock()
	for k, b := range prev.memo.httpRoutes {
		ix.memo.httpRoutes[rekey(k)] = b
	}
	for k, set := range prev.memo.transparentRoutes {
		ix.memo.transparentRoutes[rekey(k)] = set
	}
	// A service has several clusters (subsets, ports, views): compare its
	// endpoints once. (Deep comparison follows each endpoint's workload:
	// at 1000 services, once per cluster took 30 ms per change.)
	unchanged := make(map[string]bool, len(ix.services))
	for k, b := range prev.memo.clusters {
		host := k.ref.host
		same, known := unchanged[host]
		if !known {
			before, now := prev.services[host], ix.services[host]
			same = before != nil && now != nil && reflect.DeepEqual(before.Endpoints, now.Endpoints)
			unchanged[host] = same
		}
		if same {
			ix.memo.clusters[k] = b
		}
	}
}

// endpointsOnly reports whether two snapshots differ at most in their
// services' endpoints and in their workloads. Every other field is
// compared, so a field added to mesh.Snapshot or mesh.Service later is
// compared too.
func endpointsOnly(a, b *mesh.Snapshot) bool {
	if a == nil || b == nil || len(a.Services) != len(b.Services) {
		return false
	}
	for i := range a.Services {
		sa, sb := *a.Services[i], *b.Services[i]
		sa.Endpoints, sb.Endpoints = nil, nil
		if !reflect.DeepEqual(sa, sb) {
			return false
		}
	}
	ra, rb := *a, *b
	ra.Services, rb.Services = nil, nil
	ra.Workloads, rb.Workloads = nil, nil
	return reflect.DeepEqual(ra, rb)
}
