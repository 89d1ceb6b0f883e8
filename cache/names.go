package cache

// Every sidecar of a mesh asks for the same endpoint sets, by name, in
// every EDS request: at 1000 services, 3000 names per request, 165 KB. A
// stream keeps the names it subscribes to, so they are interned: every
// stream asking for the same names in the same order shares one Names.
//
// A request's names are interned as they come off the wire: the bytes that
// encode the list are hashed and compared as one block, and split into
// strings only the first time the list is seen (InternNamesWire). A list
// already interned is found again from its own slice at no cost
// (InternNames). The table holds Names weakly, and forgets them when no
// stream does.

import (
	"bytes"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// Names is a list of resource names, immutable and shared.
type Names struct {
	list []string
	set  map[string]struct{}
	wire []byte // the list as a request encodes it, if it came off the wire
}

// Has reports whether name is in n (never, for nil).
func (n *Names) Has(name string) bool {
	if n == nil {
		return false
	}
	_, ok := n.set[name]
	return ok
}

// Len is the number of distinct names in n.
func (n *Names) Len() int {
	if n == nil {
		return 0
	}
	return len(n.set)
}

// members is the set of names, nil for nil: read only.
func (n *Names) members() map[string]struct{} {
	if n == nil {
		return nil
	}
	return n.set
}

// List is the names in the order given. It is shared: read only.
func (n *Names) List() []string {
	if n == nil {
		return nil
	}
	return n.list
}

// namesKey finds a list in the table; lists with the same key are told
// apart by comparing them.
type namesKey struct {
	hash uint64
	len  int
	wire bool // hash and len are of the encoded list
}

var namesTable = struct {
	sync.Mutex
	seed   maphash.Seed
	m      map[namesKey][]weak.Pointer[Names]
	owners map[*string]weak.Pointer[Names] // by the first element of its list
	// making holds, per key, a channel closed once the list being made
	// under it is in m: the others asking for it wait instead of making
	// a copy each.
	making map[namesKey]chan struct{}
}{seed: maphash.MakeSeed(), m: map[namesKey][]weak.Pointer[Names]{}, owners: map[*string]weak.Pointer[Names]{},
	making: map[namesKey]chan struct{}{}}

// InternNames returns the shared Names for list, which it does not keep.
func InternNames(list []string) *Names {
	if len(list) == 0 {
		n, _ := intern(namesKey{}, func(*Names) bool { return true }, func() (*Names, error) { return newNames(nil, nil), nil })
		return n
	}
	namesTable.Lock()
	n := namesTable.owners[&list[0]].Value()
	namesTable.Unlock()
	if n != nil && len(n.list) == len(list) {
		return n // list is n's own
	}
	var h maphash.Hash
	h.SetSeed(namesTable.seed)
	for _, name := range list {
		h.WriteString(name)
		h.WriteByte(0)
	}
	n, _ = intern(namesKey{hash: h.Sum64(), len: len(list)},
		func(n *Names) bool { return slices.Equal(n.list, list) },
		func() (*Names, error) { return newNames(slices.Clone(list), nil), nil })
	return n
}

// InternNamesWire returns the shared Names for the list encoded in wire,
// which it does not keep; decode splits a list not seen before into its
// names (and fails if they are not valid).
func InternNamesWire(wire []byte, decode func([]byte) ([]string, error)) (*Names, error) {
	return intern(namesKey{hash: maphash.Bytes(namesTable.seed, wire), len: len(wire), wire: true},
		func(n *Names) bool { return bytes.Equal(n.wire, wire) },
		func() (*Names, error) {
			list, err := decode(wire)
			if err != nil {
				return nil, err
			}
			return newNames(list, bytes.Clone(wire)), nil
		})
}

func newNames(list []string, wire []byte) *Names {
	// Clipped: the list is shared, so an append to it must copy it.
	n := &Names{list: slices.Clip(list), set: make(map[string]struct{}, len(list)), wire: wire}
	for _, name := range list {
		n.set[name] = struct{}{}
	}
	return n
}

// intern returns the Names under key that same accepts, or adds the one
// build makes. The comparisons and build run outside the table's lock (an
// EDS request's list is 150 KB at 1000 services, and 2000 proxies ACK a
// change at once), and one caller at a time makes a list under a key: when
// the mesh changes, every proxy sends the new list at once, and each would
// otherwise decode a copy of its own, to throw away.
func intern(key namesKey, same func(*Names) bool, build func() (*Names, error)) (*Names, error) {
	for {
		var seen [4]*Names
		candidates := seen[:0]
		namesTable.Lock()
		for _, p := range namesTable.m[key] {
			if n := p.Value(); n != nil {
				candidates = append(candidates, n)
			}
		}
		making := namesTable.making[key]
		namesTable.Unlock()
		for _, n := range candidates {
			if same(n) {
				return n, nil
			}
		}
		if making != nil {
			<-making // then look again: it may be this list
			continue
		}
		namesTable.Lock()
		if namesTable.making[key] != nil || addedSince(key, candidates) {
			namesTable.Unlock()
			continue // another caller got here first: look again
		}
		namesTable.making[key] = make(chan struct{})
		namesTable.Unlock()
		return add(key, build)
	}
}

// addedSince reports whether a live Names not among seen is under key.
// The caller holds the table's lock.
func addedSince(key namesKey, seen []*Names) bool {
	for _, p := range namesTable.m[key] {
		if n := p.Value(); n != nil && !slices.Contains(seen, n) {
			return true
		}
	}
	return false
}

// add builds a list and adds it under key, which the caller is making.
func add(key namesKey, build func() (*Names, error)) (*Names, error) {
	defer doneMaking(key) // also if build panics: the others must not wait for ever
	n, err := build()
	if err != nil {
		return nil, err
	}
	namesTable.Lock()
	namesTable.m[key] = append(namesTable.m[key], weak.Make(n))
	var first *string
	if len(n.list) > 0 {
		first = &n.list[0]
		namesTable.owners[first] = weak.Make(n)
	}
	namesTable.Unlock()
	runtime.AddCleanup(n, forgetNames, forgotten{key, first})
	return n, nil
}

// doneMaking lets the callers waiting on key look again.
func doneMaking(key namesKey) {
	namesTable.Lock()
	defer namesTable.Unlock()
	close(namesTable.making[key])
	delete(namesTable.making, key)
}

// forgotten is what to remove from the table when a Names is gone.
type forgotten struct {
	key   namesKey
	first *string
}

// forgetNames drops the table's entries of a Names that is gone.
func forgetNames(f forgotten) {
	namesTable.Lock()
	defer namesTable.Unlock()
	live := slices.DeleteFunc(namesTable.m[f.key], func(p weak.Pointer[Names]) bool { return p.Value() == nil })
	if len(live) == 0 {
		delete(namesTable.m, f.key)
	} else {
		namesTable.m[f.key] = live
	}
	if f.first != nil && namesTable.owners[f.first].Value() == nil {
		delete(namesTable.owners, f.first)
	}
}
