package cache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Cache holds the published snapshot of every connected proxy, keyed by
// node ID, and answers the xDS server's watches from them.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*node
	// xds answers watches. It runs in non-ADS mode: gRPC clients ask for
	// exact resource names, and the ADS mode of go-control-plane never
	// answers a request that does not name every resource in the snapshot.
	xds cachev3.SnapshotCache
}

// node is one proxy's published snapshot. Publishing to one node is
// serialized by its own lock, so that proxies are published in parallel.
type node struct {
	mu   sync.Mutex // held while publishing
	snap atomic.Pointer[Snapshot]
	gone bool // forgotten: publish nothing more

	watches   map[int64]*sotwWatch // open state-of-the-world watches (sotw.go)
	nextWatch int64
}

// New returns an empty cache. logger receives go-control-plane's own logs.
func New(logger log.Logger) *Cache {
	return &Cache{
		nodes: map[string]*node{},
		xds:   cachev3.NewSnapshotCache(false, nodeIDHash{}, logger),
	}
}

// nodeIDHash keys snapshots by node ID.
type nodeIDHash struct{}

func (nodeIDHash) ID(node *corev3.Node) string { return node.GetId() }

// XDS returns the cache the xDS server answers from: state-of-the-world
// watches are answered by sotw.go, delta ones by go-control-plane.
func (c *Cache) XDS() cachev3.Cache { return xdsCache{c} }

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
// version changed (nil if nothing did: no proxy is pushed anything).
//
// Types are switched one at a time so that a proxy's open watches fire in
// Envoy's "make before break" order: new clusters and endpoints first,
// then listeners and routes, and only then the removal of clusters and
// endpoints nothing routes to any more. A route never points at a cluster
// the proxy does not have.
//
// go-control-plane is given the snapshot's wire view (wire.go): resources
// marshalled once and shared by every proxy that has them.
func (c *Cache) Publish(ctx context.Context, nodeID string, s *Snapshot) ([]string, error) {
	n := c.node(nodeID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gone {
		return nil, nil
	}
	prev := n.snap.Load()
	if prev == nil {
		n.snap.Store(s)
		n.respondSotW(s)
		return slices.Clone(Types), c.xds.SetSnapshot(ctx, nodeID, wireView{s})
	}
	var changed []string
	cur := prev
	step := func(typeURL string, set *typeSet) error {
		if cur.sets[typeURL].version == set.version {
			return nil
		}
		if !slices.Contains(changed, typeURL) {
			changed = append(changed, typeURL)
		}
		cur = cur.with(typeURL, set)
		n.snap.Store(cur)
		n.respondSotW(cur)
		return c.xds.SetSnapshot(ctx, nodeID, wireView{cur})
	}
	for _, t := range Types {
		set, old := s.sets[t], prev.sets[t]
		if set.version == old.version {
			continue
		}
		if breaking[t] && removes(old, set) {
			set = set.unionAfter(old) // make: add, remove nothing yet
		}
		if err := step(t, set); err != nil {
			return changed, err
		}
	}
	for _, t := range Types {
		if breaking[t] {
			if err := step(t, s.sets[t]); err != nil { // break: now remove
				return changed, err
			}
		}
	}
	// cur now has the versions of s, but keeps the sets of prev where
	// nothing changed. Keep s itself (the same versions: nothing to send),
	// so that this node no longer holds the previous mesh snapshot's sets.
	// go-control-plane (delta) keeps cur until the node's next change:
	// telling it would make it diff every resource of every delta watch
	// of the node for nothing.
	if cur.sameVersions(s) {
		cur = s
	}
	n.snap.Store(cur)
	return changed, nil
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
		n.mu.Unlock()
	}
	c.xds.ClearSnapshot(nodeID)
}
