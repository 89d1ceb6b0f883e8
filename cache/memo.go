package cache

import (
	"crypto/sha256"
	"strings"
	"sync"
	"unique"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
)

// Memo remembers, for one mesh snapshot, the work that many proxies share,
// so that it is done once and not once per proxy:
//
//   - for each resource message: its wire form (marshalled once, see
//     wire.go), its version, and whether it passed validation;
//   - for each shared run (a list the translator hands to many proxies, see
//     Run): the run hashed, validated and indexed by name;
//   - whole per-type sets: proxies whose lists are made of the same runs
//     and the same own resources get the very same typeSet, maps and all;
//   - the cross-reference checks of each combination of sets.
//
// A change then costs, for a proxy whose lists are the shared runs plus a
// few resources of its own, the hashing of those few and a handful of map
// look-ups. Resources are keyed by the message itself: a message given to a
// Memo must never change. Use one Memo per mesh snapshot (with one
// translator index). Safe for concurrent use.
type Memo struct {
	mu      sync.Mutex
	prev    *Memo // see NewMemoFrom; nil once this memo's generation is over
	entries map[types.Resource]*encoded
	runs    map[runKey]*sharedRun
	sets    map[string]*setEntry
	checks  map[checkKey]*checkEntry
	content map[contentKey]*encoded // the first entry of each content
}

// encoded is one resource as it goes on the wire.
type encoded struct {
	once    sync.Once
	version string
	wire    *discoveryv3.Resource
	name    unique.Handle[string] // keeps the canonical name alive
	err     error                 // it cannot be marshalled

	validOnce sync.Once
	invalid   error // what ValidateAll said

	refsOnce sync.Once
	refs     *refs // a listener's or route configuration's references (check.go)

	res  types.Resource // the message
	twin *encoded       // an earlier entry of the same content, whose checks it shares
}

// contentKey is a resource's content: its type and version (a hash of its
// deterministic encoding).
type contentKey struct{ typeURL, version string }

type runKey struct {
	typeURL string
	key     any
}

// sharedRun is a run prepared once: its resources checked one by one,
// hashed and wrapped for the wire.
type sharedRun struct {
	once sync.Once
	id   string // its content, for set keys (contentID)
	part *part
}

type setEntry struct {
	once sync.Once
	set  *typeSet
}

// NewMemo returns an empty memo.
func NewMemo() *Memo {
	return &Memo{
		entries: map[types.Resource]*encoded{},
		runs:    map[runKey]*sharedRun{},
		sets:    map[string]*setEntry{},
		checks:  map[checkKey]*checkEntry{},
		content: map[contentKey]*encoded{},
	}
}

// NewMemoFrom returns an empty memo for the mesh snapshot after prev's. A
// resource that prev encoded and validated (the very same message: the
// translator hands unchanged per-proxy messages out again, see
// translator.NewIndexFrom) is not encoded or validated again. Only one
// generation is kept: prev forgets its own predecessor.
func NewMemoFrom(prev *Memo) *Memo {
	m := NewMemo()
	if prev != nil {
		prev.mu.Lock()
		prev.prev = nil
		prev.mu.Unlock()
		m.prev = prev
	}
	return m
}

// encode returns the version and the wire form of r, computed once per
// memo (or taken over from the previous one). A nil memo remembers nothing.
func (m *Memo) encode(r types.Resource) *encoded {
	e := &encoded{}
	if m != nil {
		e = carried(m, func(m *Memo) map[types.Resource]*encoded { return m.entries }, r)
	}
	e.once.Do(func() {
		e.res = r
		e.version, e.wire, e.err = encode(r)
		if e.err != nil {
			return
		}
		// One copy of the name for every set and response, while
		// the handle lives.
		e.name = unique.Make(e.wire.Name)
		e.wire.Name = e.name.Value()
		// A new message with the content of one seen before (the
		// translator builds the messages many proxies share anew for each
		// mesh snapshot, and most come out the same) shares its wire form
		// and its checks, which are the costly part: the regular
		// expressions of a route configuration's validation. e is
		// complete before other goroutines can find it as a twin.
		if twin := m.sameContent(contentKey{e.wire.GetResource().GetTypeUrl(), e.version}, e); twin != nil {
			e.twin, e.wire, e.name = twin, twin.wire, twin.name
		}
	})
	return e
}

// carried returns m's entry under key: the one m has, or else the one the
// previous memo had (taken over, so that what it holds is not redone), or
// else a new one.
func carried[K comparable, V any](m *Memo, pick func(*Memo) map[K]*V, key K) *V {
	m.mu.Lock()
	e := pick(m)[key]
	prev := m.prev
	m.mu.Unlock()
	if e != nil {
		return e
	}
	if prev != nil {
		prev.mu.Lock()
		e = pick(prev)[key]
		prev.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := pick(m)[key]; cur != nil {
		return cur // added meanwhile
	}
	if e == nil {
		e = new(V)
	}
	pick(m)[key] = e
	return e
}

// sameContent returns the first entry of this memo or the previous one
// with content k, or records e as the first and returns nil. A nil memo
// remembers nothing.
func (m *Memo) sameContent(k contentKey, e *encoded) *encoded {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	first := m.content[k]
	prev := m.prev
	m.mu.Unlock()
	if first == nil && prev != nil {
		prev.mu.Lock()
		first = prev.content[k]
		prev.mu.Unlock()
	}
	if first == e {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.content[k]; cur != nil {
		first = cur
	}
	if first == nil {
		m.content[k] = e
		return nil
	}
	m.content[k] = first
	return first
}

// validate is ValidateAll of r, run once per memo.
func (m *Memo) validate(r types.Resource) error {
	v, ok := r.(validator)
	if !ok {
		return nil
	}
	e := m.encode(r)
	e.validOnce.Do(func() {
		if e.twin != nil {
			e.invalid = m.validate(e.twin.res)
			return
		}
		e.invalid = v.ValidateAll()
	})
	return e.invalid
}

// typeSet returns the set of one type made of list, sharing it with every
// other proxy whose list is made of the same runs and the same own
// resources (by content). runs must be ordered and within list; one that is
// not is ignored, and its resources count as the proxy's own.
func (m *Memo) typeSet(typeURL string, lists Lists, runs []Run) *typeSet {
	n := lists.Len(typeURL)
	if m == nil || len(runs) == 0 {
		return buildSet(typeURL, []*part{m.ownPart(typeURL, lists.Slice(typeURL, 0, n))})
	}
	var (
		parts []*part
		key   strings.Builder
		next  int // the first resource not yet in a part
	)
	key.WriteString(typeURL)
	addOwn := func(from, to int) {
		if from == to {
			return
		}
		p := m.ownPart(typeURL, lists.Slice(typeURL, from, to))
		parts = append(parts, p)
		for _, it := range p.items {
			key.WriteString("\x00o")
			key.WriteString(it.name)
			key.WriteByte(0)
			key.WriteString(it.version)
		}
		for _, err := range p.errs {
			key.WriteString("\x00e")
			key.WriteString(err.Error())
		}
	}
	for _, run := range runs {
		if run.Start < next || run.End <= run.Start || run.End > n {
			continue
		}
		addOwn(next, run.Start)
		sr := m.sharedRun(typeURL, run.Key, func() []types.Resource { return lists.Slice(typeURL, run.Start, run.End) })
		parts = append(parts, sr.part)
		key.WriteString("\x00r")
		key.WriteString(sr.id)
		next = run.End
	}
	addOwn(next, n)

	// The key names the content (runs by content too): a set of the same
	// content as one the previous memo built is that very set, so a
	// proxy's types that a change did not touch keep their sets.
	e := carried(m, func(m *Memo) map[string]*setEntry { return m.sets }, key.String())
	e.once.Do(func() { e.set = buildSet(typeURL, parts) })
	return e.set
}

// sharedRun returns the prepared run of a key, preparing it from list()
// the first time.
func (m *Memo) sharedRun(typeURL string, key any, list func() []types.Resource) *sharedRun {
	k := runKey{typeURL, key}
	m.mu.Lock()
	sr := m.runs[k]
	if sr == nil {
		sr = &sharedRun{}
		m.runs[k] = sr
	}
	m.mu.Unlock()
	sr.once.Do(func() {
		sr.part = m.ownPart(typeURL, list())
		sr.id = sr.part.contentID()
	})
	return sr
}

// SharedRuns is the number of shared runs (see Run) this memo has
// prepared, or is preparing: checked, hashed and wrapped for the wire
// once, for every proxy given them.
func (m *Memo) SharedRuns() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.runs)
}

// contentID names a part by its content: every name and version, and
// every problem, hashed.
func (p *part) contentID() string {
	h := sha256.New()
	for _, it := range p.items {
		h.Write([]byte(it.name))
		h.Write([]byte{0})
		h.Write([]byte(it.version))
		h.Write([]byte{0})
	}
	for _, err := range p.errs {
		h.Write([]byte{1})
		h.Write([]byte(err.Error()))
	}
	return string(h.Sum(nil))
}
