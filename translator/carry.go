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
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
