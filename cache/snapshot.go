// Package cache holds the configuration each proxy is served: one Snapshot
// per proxy, published into go-control-plane's snapshot cache, from which
// the xDS server answers.
//
// Every resource is versioned by a hash of its content, and every type by a
// hash of its resources, so replicas and restarts compute the same versions
// and a push happens only when something really changed. Every snapshot is
// checked before it is published (Envoy's own validation rules and the
// cross-references Envoy and gRPC would reject); a snapshot that fails is
// never published, and proxies keep the last good one.
//
// cache imports go-control-plane and Envoy's API types; never the
// translator, the watchers or the xDS server.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// Types lists the xDS types minimesh serves, in the order a change is pushed:
// clusters before the endpoints they need, listeners before their routes
// (Envoy's "make before break" ordering for ADS).
var Types = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
	resourcev3.SecretType,
}

// typeSet is the resources of one type with their versions.
type typeSet struct {
	version   string                           // hash of all resource versions
	resources map[string]types.ResourceWithTTL // by name
	versions  map[string]string                // by name: hash of the resource
}

// Snapshot is one proxy's complete, checked and versioned configuration.
// It implements go-control-plane's ResourceSnapshot.
type Snapshot struct {
	sets map[string]*typeSet
}

var _ cachev3.ResourceSnapshot = (*Snapshot)(nil)

// NewSnapshot checks resources (keyed by type URL) and versions them. It
// returns an error naming every problem found; such a snapshot must not be
// published.
func NewSnapshot(byType map[string][]types.Resource) (*Snapshot, error) {
	return NewSnapshotMemo(byType, nil)
}

// NewSnapshotMemo is NewSnapshot for resources shared with other proxies'
// snapshots: each shared resource is validated and hashed once per memo.
func NewSnapshotMemo(byType map[string][]types.Resource, memo *Memo) (*Snapshot, error) {
	if err := check(byType, memo); err != nil {
		return nil, err
	}
	s := &Snapshot{sets: make(map[string]*typeSet, len(Types))}
	for _, t := range Types {
		set, err := newTypeSet(byType[t], memo)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", shortType(t), err)
		}
		s.sets[t] = set
	}
	return s, nil
}

// newTypeSet hashes each resource and the whole set.
func newTypeSet(list []types.Resource, memo *Memo) (*typeSet, error) {
	set := &typeSet{
		resources: make(map[string]types.ResourceWithTTL, len(list)),
		versions:  make(map[string]string, len(list)),
	}
	for _, r := range list {
		name := cachev3.GetResourceName(r)
		v, err := memo.version(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		set.resources[name] = types.ResourceWithTTL{Resource: r}
		set.versions[name] = v
	}
	set.version = setVersion(set.versions)
	return set, nil
}

// setVersion is the version of a set of resources: a digest of every name
// with its version. It does not depend on order, so it needs no sorting:
// each (name, version) pair is hashed with FNV-1a, twice with different
// framing, and the 64-bit hashes are summed into 128 bits. (It runs for
// every type of every proxy on every change; the resource versions inside
// are SHA-256.)
func setVersion(versions map[string]string) string {
	var a, b uint64
	for n, v := range versions {
		a += fnv64(fnv64(fnv64(fnvOffset, n), "\x00"), v)
		b += fnv64(fnv64(fnv64(fnvOffset, v), "\x01"), n)
	}
	return fmt.Sprintf("%016x%016x", a, b)
}

// FNV-1a, 64 bits, over strings without allocating.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv64(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// union is the resources of a and b together; b's win where both have a name.
func union(a, b *typeSet) *typeSet {
	u := &typeSet{
		resources: make(map[string]types.ResourceWithTTL, len(a.resources)+len(b.resources)),
		versions:  make(map[string]string, len(a.versions)+len(b.versions)),
	}
	for _, s := range []*typeSet{a, b} {
		for n, r := range s.resources {
			u.resources[n] = r
			u.versions[n] = s.versions[n]
		}
	}
	u.version = setVersion(u.versions)
	return u
}

// removes reports whether going from a to b removes a resource.
func removes(a, b *typeSet) bool {
	for n := range a.resources {
		if _, kept := b.resources[n]; !kept {
			return true
		}
	}
	return false
}

// HashResource is the version of one resource: a hash of its deterministic
// wire encoding.
func HashResource(r types.Resource) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16], nil
}

// GetVersion returns the version of one type.
func (s *Snapshot) GetVersion(typeURL string) string {
	if set := s.sets[typeURL]; set != nil {
		return set.version
	}
	return ""
}

// GetResourcesAndTTL returns the resources of one type by name.
func (s *Snapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if set := s.sets[typeURL]; set != nil {
		return set.resources
	}
	return nil
}

// GetResources returns the resources of one type by name.
func (s *Snapshot) GetResources(typeURL string) map[string]types.Resource {
	set := s.sets[typeURL]
	if set == nil {
		return nil
	}
	out := make(map[string]types.Resource, len(set.resources))
	for n, r := range set.resources {
		out[n] = r.Resource
	}
	return out
}

// ConstructVersionMap does nothing: versions are computed when the snapshot
// is made.
func (s *Snapshot) ConstructVersionMap() error { return nil }

// GetVersionMap returns the version of each resource of one type, by name.
func (s *Snapshot) GetVersionMap(typeURL string) map[string]string {
	if set := s.sets[typeURL]; set != nil {
		return set.versions
	}
	return nil
}

// Versions returns the version of each type, keyed by type URL.
func (s *Snapshot) Versions() map[string]string {
	out := make(map[string]string, len(s.sets))
	for t, set := range s.sets {
		out[t] = set.version
	}
	return out
}

// with returns a copy of s whose resources of one type are set.
// Publishing goes through such intermediate snapshots to push types in order.
func (s *Snapshot) with(typeURL string, set *typeSet) *Snapshot {
	out := &Snapshot{sets: make(map[string]*typeSet, len(s.sets))}
	for t, v := range s.sets {
		out.sets[t] = v
	}
	out.sets[typeURL] = set
	return out
}

// shortType turns a type URL into "Cluster", "Listener", ...
func shortType(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}

// ShortType turns a type URL into "Cluster", "Listener", ... for logs.
func ShortType(typeURL string) string { return shortType(typeURL) }
