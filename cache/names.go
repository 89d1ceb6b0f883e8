package cache

// Every sidecar of a mesh asks for the same endpoint sets, by name, in
// every EDS request: at 1000 services, 3000 names per request. A stream
// keeps the names it subscribes to, so they are interned: every stream
// asking for the same names in the same order shares one Names. The table
// holds them weakly, and forgets them when no stream does.

import (
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"unicode/utf8"
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

// List is the names in the order given. It is shared: read only.
func (n *Names) List() []string {
	if n == nil {
		return nil
	}
	return n.list
}

// InternNames returns the shared Names for list, which it does not keep.
func InternNames(list []string) *Names {
	n, _ := intern(list, func(h *maphash.Hash, i int) { h.WriteString(list[i]) },
		func(i int, s string) bool { return list[i] == s },
		func(i int) string { return list[i] }, nil)
	return n
}

// InternNameBytes returns the shared Names for names as they come off the
// wire, UTF-8 checked, without making a string of each unless the list is
// new. It is how a request naming 3000 endpoint sets costs no allocation
// per name (xds/codec.go).
func InternNameBytes(names [][]byte) (*Names, error) {
	// A list equal to a known one is valid; a new one is checked.
	valid := func() error {
		for _, b := range names {
			if !utf8.Valid(b) {
				return fmt.Errorf("resource name %q is not valid UTF-8", b)
			}
		}
		return nil
	}
	return intern(names, func(h *maphash.Hash, i int) { h.Write(names[i]) },
		func(i int, s string) bool { return string(names[i]) == s },
		func(i int) string { return string(names[i]) }, valid)
}

// intern finds or adds the list of n names whose i-th name write hashes,
// equal compares and str makes; valid, if not nil, checks a list that is
// new.
func intern[L ~[]E, E any](list L, write func(*maphash.Hash, int), equal func(int, string) bool, str func(int) string, valid func() error) (*Names, error) {
	var h maphash.Hash
	h.SetSeed(namesTable.seed)
	for i := range list {
		write(&h, i)
		h.WriteByte(0)
	}
	key := namesKey{hash: h.Sum64(), len: len(list)}

	namesTable.Lock()
	defer namesTable.Unlock()
	for _, p := range namesTable.m[key] {
		if n := p.Value(); n != nil && sameNames(n.list, equal) {
			return n, nil
		}
	}
	if valid != nil {
		if err := valid(); err != nil {
			return nil, err
		}
	}
	n := &Names{list: make([]string, len(list)), set: make(map[string]struct{}, len(list))}
	for i := range list {
		n.list[i] = str(i)
		n.set[n.list[i]] = struct{}{}
	}
	namesTable.m[key] = append(namesTable.m[key], weak.Make(n))
	runtime.AddCleanup(n, forgetNames, key)
	return n, nil
}

// sameNames reports whether list is the list equal compares with (of the
// same length).
func sameNames(list []string, equal func(int, string) bool) bool {
	for i, s := range list {
		if !equal(i, s) {
			return false
		}
	}
	return true
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
