package cache

import (
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
)

// Memo remembers, for resources that many proxies share (the translator
// hands the same cluster to every sidecar), their version and whether they
// passed validation, so that each is hashed and validated once, not once per
// proxy. It is keyed by the message itself: a shared message must never
// change. Use one Memo per mesh snapshot. Safe for concurrent use.
type Memo struct {
	mu sync.Mutex
	m  map[types.Resource]*memoEntry
}

type memoEntry struct {
	version  string
	hashErr  error
	hashed   bool
	invalid  error
	verified bool
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{m: map[types.Resource]*memoEntry{}} }

func (m *Memo) entry(r types.Resource) *memoEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.m[r]
	if e == nil {
		e = &memoEntry{}
		m.m[r] = e
	}
	return e
}

// version is HashResource, remembered. A nil memo remembers nothing.
func (m *Memo) version(r types.Resource) (string, error) {
	if m == nil {
		return HashResource(r)
	}
	e := m.entry(r)
	m.mu.Lock()
	done, v, err := e.hashed, e.version, e.hashErr
	m.mu.Unlock()
	if done {
		return v, err
	}
	v, err = HashResource(r)
	m.mu.Lock()
	e.version, e.hashErr, e.hashed = v, err, true
	m.mu.Unlock()
	return v, err
}

// validate is ValidateAll, remembered.
func (m *Memo) validate(v validator) error {
	if m == nil {
		return v.ValidateAll()
	}
	r := v.(types.Resource)
	e := m.entry(r)
	m.mu.Lock()
	done, err := e.verified, e.invalid
	m.mu.Unlock()
	if done {
		return err
	}
	err = v.ValidateAll()
	m.mu.Lock()
	e.invalid, e.verified = err, true
	m.mu.Unlock()
	return err
}
