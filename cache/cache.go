package cache

import (
	"context"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Cache holds the published snapshot of every connected proxy, keyed by
// node ID, and answers the xDS server's watches from them.
type Cache struct {
	mu    sync.Mutex
	snaps map[string]*Snapshot
	// xds answers watches. It runs in non-ADS mode: gRPC clients ask for
	// exact resource names, and the ADS mode of go-control-plane never
	// answers a request that does not name every resource in the snapshot.
	xds cachev3.SnapshotCache
}

// New returns an empty cache. logger receives go-control-plane's own logs.
func New(logger log.Logger) *Cache {
	return &Cache{
		snaps: map[string]*Snapshot{},
		xds:   cachev3.NewSnapshotCache(false, nodeIDHash{}, logger),
	}
}

// nodeIDHash keys snapshots by node ID.
type nodeIDHash struct{}

func (nodeIDHash) ID(node *corev3.Node) string { return node.GetId() }

// XDS returns the cache the xDS server answers from.
func (c *Cache) XDS() cachev3.Cache { return c.xds }

// Publish makes s the configuration of a node and returns the types whose
// version changed (nil if nothing did: no proxy is pushed anything).
//
// Types are switched one at a time so that a proxy's open watches fire in
// Envoy's "make before break" order: new clusters and endpoints first,
// then listeners and routes, and only then the removal of clusters and
// endpoints nothing routes to any more. A route never points at a cluster
// the proxy does not have.
func (c *Cache) Publish(ctx context.Context, nodeID string, s *Snapshot) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.snaps[nodeID]
	if prev == nil {
		c.snaps[nodeID] = s
		return slices.Clone(Types), c.xds.SetSnapshot(ctx, nodeID, s)
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
		return c.xds.SetSnapshot(ctx, nodeID, cur)
	}
	for _, t := range Types {
		set := s.sets[t]
		if breaking[t] && removes(prev.sets[t], set) {
			set = union(prev.sets[t], set) // make: add, remove nothing yet
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
	c.snaps[nodeID] = cur
	return changed, nil
}

// breaking are the types whose removals wait until routes and listeners
// no longer use them.
var breaking = map[string]bool{resourcev3.ClusterType: true, resourcev3.EndpointType: true}

// Get returns the published snapshot of a node, or nil.
func (c *Cache) Get(nodeID string) *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snaps[nodeID]
}

// Forget drops a node's snapshot, when its last stream has closed.
func (c *Cache) Forget(nodeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.snaps, nodeID)
	c.xds.ClearSnapshot(nodeID)
}
