package cache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Cache holds the published snapshot of every connected proxy, keyed by
// node ID, and answers the xDS server's watches from them.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*node
}

// node is one proxy's published snapshot. Publishing to one node is
// serialized by its own lock, so that proxies are published in parallel.
type node struct {
	mu   sync.Mutex // held while publishing
	snap atomic.Pointer[Snapshot]
	gone bool // forgotten: publish nothing more

	watches   map[int64]*sotwWatch // open state-of-the-world watches (sotw.go)
	nextWatch int64

	deltaOpen map[*DeltaState]struct{} // the delta streams with an open watch (delta.go)
}

// New returns an empty cache. The logger is not used any more: the cache
// answers every watch itself and logs nothing.
func New(logger log.Logger) *Cache {
	return &Cache{nodes: map[string]*node{}}
}

// node returns the state of a node, creating it.
func (c *Cache) node(nodeID string) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[nodeID]
	if n == nil {
		n = &node{}
		c.nodes[nodeID] = n
	}
	return n
}

// Publish makes s the configuration of a node and returns the types whose
// version changed (nil if nothing did: no proxy is pushed anything). The
// error is always nil: s was checked when it was made.
//
// Types are switched one at a time so that a proxy's open watches fire in
// Envoy's "make before break" order: new clusters and endpoints first,
// then listeners and routes, and only then the removal of clusters and
// endpoints nothing routes to any more. A route never points at a cluster
// the proxy does not have.
func (c *Cache) Publish(_ context.Context, nodeID string, s *Snapshot) ([]string, error) {
	n := c.node(nodeID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gone {
		return nil, nil
	}
	prev := n.snap.Load()
	if prev == nil {
		n.snap.Store(s)
		n.respond(s)
		return slices.Clone(Types), nil
	}
	var changed []string
	cur := prev
	step := func(typeURL string, set *typeSet) {
		if cur.sets[typeURL].version == set.version {
			return
		}
		if !slices.Contains(changed, typeURL) {
			changed = append(changed, typeURL)
		}
		cur = cur.with(typeURL, set)
		n.snap.Store(cur)
		n.respond(cur)
	}
	for _, t := range Types {
		set, old := s.sets[t], prev.sets[t]
		if set.version == old.version {
			continue
		}
		if breaking[t] && removes(old, set) {
			set = set.unionAfter(old) // make: add, remove nothing yet
		}
		step(t, set)
	}
	for _, t := range Types {
		if breaking[t] {
			step(t, s.sets[t]) // break: now remove
		}
	}
	// cur now has the versions of s, but keeps the sets of prev where
	// nothing changed. Keep s itself (the same versions: nothing to send),
	// so that this node no longer holds the previous mesh snapshot's sets;
	// the delta streams waiting for a change move onto s's sets too.
	if cur.sameVersions(s) {
		cur = s
	}
	n.snap.Store(cur)
	n.respond(cur)
	return changed, nil
}

// respond answers the node's open watches that s gives something to send.
func (n *node) respond(s *Snapshot) {
	n.respondSotW(s)
	n.respondDelta(s)
}

// breaking are the types whose removals wait until routes and listeners
// no longer use them.
var breaking = map[string]bool{resourcev3.ClusterType: true, resourcev3.EndpointType: true}

// Get returns the published snapshot of a node, or nil.
func (c *Cache) Get(nodeID string) *Snapshot {
	c.mu.Lock()
	n := c.nodes[nodeID]
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.snap.Load()
}

// Forget drops a node's snapshot, when its last stream has closed.
func (c *Cache) Forget(nodeID string) {
	c.mu.Lock()
	n := c.nodes[nodeID]
	delete(c.nodes, nodeID)
	c.mu.Unlock()
	if n != nil {
		n.mu.Lock()
		n.gone = true
		n.snap.Store(nil)
		n.watches = nil
		n.deltaOpen = nil
		n.mu.Unlock()
	}
}
