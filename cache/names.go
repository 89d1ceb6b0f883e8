package cache

// Every sidecar of a mesh asks for the same endpoint sets, by name, in
// every EDS request: at 1000 services, 3000 names per request. A stream
// keeps the names it subscribes to, so they are interned: every stream
// asking for the same names in the same order shares one Names. The table
// holds them weakly, and forgets them when no stream does.

import (
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
}

// Has reports whether name is in n (never, for nil).
func (n *Names) Has(name string) bool {
	if n == nil {
		return false
	}
	_, ok := n.set[name]
	return ok
}

// Len is the number of names in n.
func (n *Names) Len() int {
	if n == nil {
		return 0
	}
	return len(n.set)
}

// namesKey finds a list in the table; lists with the same key are told
// apart by comparing them.
type namesKey struct {
	hash uint64
	len  int
}

var namesTable = struct {
	sync.Mutex
	seed maphash.Seed
	m    map[namesKey][]weak.Pointer[Names]
}{seed: maphash.MakeSeed(), m: map[namesKey][]weak.Pointer[Names]{}}

// InternNames returns the shared Names for list, which it does not keep.
func InternNames(list []string) *Names {
	var h maphash.Hash
	h.SetSeed(namesTable.seed)
	for _, name := range list {
		h.WriteString(name)
		h.WriteByte(0)
	}
	key := namesKey{hash: h.Sum64(), len: len(list)}

	namesTable.Lock()
	defer namesTable.Unlock()
	for _, p := range namesTable.m[key] {
		if n := p.Value(); n != nil && slices.Equal(n.list, list) {
			return n
		}
	}
	n := &Names{list: slices.Clone(list), set: make(map[string]struct{}, len(list))}
	for _, name := range n.list {
		n.set[name] = struct{}{}
	}
	namesTable.m[key] = append(namesTable.m[key], weak.Make(n))
	runtime.AddCleanup(n, forgetNames, key)
	return n
}

// forgetNames drops the table's entries under key whose Names are gone.
func forgetNames(key namesKey) {
	namesTable.Lock()
	defer namesTable.Unlock()
	live := slices.DeleteFunc(namesTable.m[key], func(p weak.Pointer[Names]) bool { return p.Value() == nil })
	if len(live) == 0 {
		delete(namesTable.m, key)
	} else {
		namesTable.m[key] = live
	}
}
