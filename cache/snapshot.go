// Package cache holds the configuration each proxy is served: one Snapshot
// per proxy, from which the xDS server answers: state-of-the-world watches
// by sotw.go, delta watches by delta.go, both from resources marshalled once
// and shared by every proxy that has them (wire.go).
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
	"errors"
	"fmt"
	"slices"
	"sync"
	"weak"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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

// Run marks resources that many proxies share: list[Start:End] of one
// type is the very same messages, in the same order, for every proxy whose
// run has the same Key (the translator's SharedRun). The cache prepares
// such a run once per Memo and builds each distinct set of runs and own
// resources once, instead of once per proxy.
type Run struct {
	Key        any
	Start, End int
}

// typeSet is the resources of one type with their versions. It is
// immutable once built, and shared by every proxy snapshot with the same
// resources of that type.
type typeSet struct {
	version   string                           // hash of all resource versions
	resources map[string]types.Resource        // by name: the messages
	versions  map[string]string                // by name: hash of the resource
	wire      map[string]*discoveryv3.Resource // by name: ready to send (wire.go)
	order     []string                         // the names, in the order given
	err       error                            // problems with single resources
	typeURL   string

	sendOnce    sync.Once
	send        *sendable // sotw.go
	coveredLast *Names    // under mu: the last subscription found to cover the set (sotw.go)

	deltaOnce     sync.Once
	deltaAll      []*discoveryv3.Resource // every resource, in order (delta.go)
	deltaEncoding onSecondUse             // deltaAll as a response's field 2 (wire.go)

	mu sync.Mutex
	// union is the last union with an earlier set (unionAfter). The
	// earlier set is held weakly: a chain of sets, each holding the one
	// before, would keep every generation of the mesh in memory.
	unionPrev weak.Pointer[typeSet]
	union     *typeSet
	withTTL   map[string]types.ResourceWithTTL
	ttlBuilt  bool
	// diffs are the differences from the sets it was last compared with
	// (setdiff.go), the earlier sets held weakly too.
	diffs []*setDiff
}

// Snapshot is one proxy's complete, checked and versioned configuration.
// It implements go-control-plane's ResourceSnapshot with the resources
// themselves (what the debug endpoints and tests read); the xDS answers
// are built from each set's wire form (wire.go).
type Snapshot struct {
	sets map[string]*typeSet
}

var _ cachev3.ResourceSnapshot = (*Snapshot)(nil)

// NewSnapshot checks resources (keyed by type URL) and versions them. It
// returns an error naming every problem found; such a snapshot must not be
// published.
func NewSnapshot(byType map[string][]types.Resource) (*Snapshot, error) {
	return NewSnapshotShared(byType, nil, nil)
}

// NewSnapshotMemo is NewSnapshot for resources shared with other proxies'
// snapshots: each shared resource is validated and hashed once per memo.
func NewSnapshotMemo(byType map[string][]types.Resource, memo *Memo) (*Snapshot, error) {
	return NewSnapshotShared(byType, nil, memo)
}

// NewSnapshotShared is NewSnapshotMemo for lists whose shared runs are
// marked (by type URL): proxies with the same runs and own resources share
// whole sets, and their checks, and a proxy whose runs did not change costs
// almost nothing to rebuild.
func NewSnapshotShared(byType map[string][]types.Resource, runs map[string][]Run, memo *Memo) (*Snapshot, error) {
	for t := range byType {
		if !slices.Contains(Types, t) {
			return nil, fmt.Errorf("unexpected resource type %s", t)
		}
	}
	return NewSnapshotFrom(mapLists(byType), runs, memo)
}

// Lists are a proxy's resources, one list per type URL, read in place. A
// proxy's lists are mostly runs it shares with others (Run); the cache
// reads the rest, and a run's resources only the first time it meets the
// run, so a proxy costs in proportion to what is its own.
type Lists interface {
	// Len is the length of a type's list.
	Len(typeURL string) int
	// Slice returns a type's list[i:j]; the cache does not keep it.
	Slice(typeURL string, i, j int) []types.Resource
}

// mapLists are lists held in a map.
type mapLists map[string][]types.Resource

func (m mapLists) Len(typeURL string) int { return len(m[typeURL]) }
func (m mapLists) Slice(typeURL string, i, j int) []types.Resource {
	return m[typeURL][i:j]
}

// NewSnapshotFrom is NewSnapshotShared reading the lists in place.
func NewSnapshotFrom(lists Lists, runs map[string][]Run, memo *Memo) (*Snapshot, error) {
	var errs []error
	s := &Snapshot{sets: make(map[string]*typeSet, len(Types))}
	for _, t := range Types {
		set := memo.typeSet(t, lists, runs[t])
		if set.err != nil {
			errs = append(errs, set.err)
		}
		s.sets[t] = set
	}
	errs = append(errs, memo.crossCheck(s)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// item is one resource, named, versioned and wrapped for the wire.
type item struct {
	name, version string
	res           types.Resource
	wire          *discoveryv3.Resource
}

// part is a list of resources checked one by one: the ones filed under
// the right type, and the problems of each.
type part struct {
	items []item
	errs  []error
}

// ownPart checks, hashes and wraps each resource of a list of one type.
func (m *Memo) ownPart(typeURL string, list []types.Resource) *part {
	p := &part{items: make([]item, 0, len(list))}
	for _, r := range list {
		name := cachev3.GetResourceName(r)
		// A resource filed under another type's URL would be sent as that
		// type, and make the checks' casts panic: refuse it.
		if got := resourcev3.APITypePrefix + string(proto.MessageName(r)); got != typeURL {
			p.errs = append(p.errs, fmt.Errorf("%s %q: is a %s", shortType(typeURL), name, shortType(got)))
			continue
		}
		switch invalid := m.validate(r); {
		case invalid != nil:
			p.errs = append(p.errs, fmt.Errorf("%s %q: %w", shortType(typeURL), name, invalid))
		case name == "":
			// xDS knows resources by name, but ValidateAll lets a listener
			// or a route configuration have none: a gRPC client cannot ask
			// for it, and Envoy gives a nameless listener a new random name
			// on every update.
			p.errs = append(p.errs, fmt.Errorf("%s %q: no name", shortType(typeURL), name))
		}
		e := m.encode(r)
		if e.err != nil {
			p.errs = append(p.errs, fmt.Errorf("%s %q: %w", shortType(typeURL), name, e.err))
			continue
		}
		p.items = append(p.items, item{name: e.wire.Name, version: e.version, res: r, wire: e.wire})
	}
	return p
}

// buildSet puts parts together into one set, refusing duplicate names.
func buildSet(typeURL string, parts []*part) *typeSet {
	n := 0
	for _, p := range parts {
		n += len(p.items)
	}
	set := &typeSet{
		resources: make(map[string]types.Resource, n),
		versions:  make(map[string]string, n),
		wire:      make(map[string]*discoveryv3.Resource, n),
		order:     make([]string, 0, n),
		typeURL:   typeURL,
	}
	var errs []error
	for _, p := range parts {
		errs = append(errs, p.errs...)
		for _, it := range p.items {
			if _, dup := set.resources[it.name]; dup {
				errs = append(errs, fmt.Errorf("%s %q: duplicate name", shortType(typeURL), it.name))
				continue
			}
			set.add(it)
		}
	}
	set.version = setVersion(set.versions)
	set.err = errors.Join(errs...)
	return set
}

func (s *typeSet) add(it item) {
	s.resources[it.name] = it.res
	s.versions[it.name] = it.version
	s.wire[it.name] = it.wire
	s.order = append(s.order, it.name)
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

// unionAfter is the resources of prev and s together (s's win where both
// have a name), computed once for the proxies that all go from prev to s.
func (s *typeSet) unionAfter(prev *typeSet) *typeSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.union != nil && s.unionPrev.Value() == prev {
		return s.union
	}
	u := &typeSet{
		typeURL:   s.typeURL,
		resources: make(map[string]types.Resource, len(prev.resources)+len(s.resources)),
		versions:  make(map[string]string, len(prev.versions)+len(s.versions)),
		wire:      make(map[string]*discoveryv3.Resource, len(prev.resources)+len(s.resources)),
	}
	for _, n := range prev.order {
		if _, kept := s.resources[n]; !kept {
			u.add(item{name: n, version: prev.versions[n], res: prev.resources[n], wire: prev.wire[n]})
		}
	}
	for _, n := range s.order {
		u.add(item{name: n, version: s.versions[n], res: s.resources[n], wire: s.wire[n]})
	}
	u.version = setVersion(u.versions)
	s.unionPrev, s.union = weak.Make(prev), u
	return u
}

// removes reports whether going from a to b removes a resource. Every
// proxy making the same move shares the answer (setdiff.go).
func removes(a, b *typeSet) bool {
	if a == b || len(a.resources) == 0 {
		return false
	}
	return len(b.diffFrom(a).removed) > 0
}

// HashResource is the version of one resource: a hash of its deterministic
// wire encoding.
func HashResource(r types.Resource) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", err
	}
	return versionOf(b), nil
}

// versionOf is the version of a resource's deterministic wire encoding.
func versionOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// encode marshals r once: its version, and r ready to send (wire.go).
func encode(r types.Resource) (version string, wire *discoveryv3.Resource, err error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", nil, err
	}
	version = versionOf(b)
	return version, wireResource(r, version, b), nil
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
	set := s.sets[typeURL]
	if set == nil {
		return nil
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if !set.ttlBuilt {
		set.withTTL = make(map[string]types.ResourceWithTTL, len(set.resources))
		for n, r := range set.resources {
			set.withTTL[n] = types.ResourceWithTTL{Resource: r}
		}
		set.ttlBuilt = true
	}
	return set.withTTL
}

// GetResources returns the resources of one type by name. The map and the
// messages are shared with other snapshots: do not modify them.
func (s *Snapshot) GetResources(typeURL string) map[string]types.Resource {
	if set := s.sets[typeURL]; set != nil {
		return set.resources
	}
	return nil
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

// sameVersions reports whether s and o have the same version of every type.
func (s *Snapshot) sameVersions(o *Snapshot) bool {
	for t, set := range s.sets {
		if o.sets[t] == nil || o.sets[t].version != set.version {
			return false
		}
	}
	return len(s.sets) == len(o.sets)
}
