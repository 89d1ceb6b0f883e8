package certs

import (
	"sync"
	"time"
)

// Store caches one current certificate per Identity and re-issues it once
// its RefreshAt has passed (on Get). Safe for concurrent use.
type Store struct {
	ca    *CA
	dir   string // where certificates are kept across restarts; "" for memory only
	mu    sync.Mutex
	certs map[Identity]*Cert
}

// NewStore returns an empty Store issuing from ca.
func NewStore(ca *CA) *Store {
	return &Store{ca: ca, certs: map[Identity]*Cert{}}
}

// Get returns the cached certificate for id, issuing a new one when none is
// cached or the cached one is due for refresh. An empty id.TrustDomain means
// the CA's.
func (s *Store) Get(id Identity) (*Cert, error) {
	id, err := s.ca.normalize(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.certs[id]; c != nil && s.ca.now().Before(c.RefreshAt()) {
		return c, nil
	}
	if s.dir != "" && s.certs[id] == nil {
		if c := s.load(id); c != nil {
			s.certs[id] = c
			return c, nil
		}
	}
	c, err := s.ca.Issue(id)
	if err != nil {
		return nil, err
	}
	if s.dir != "" {
		if err := s.save(c); err != nil {
			return nil, err
		}
	}
	s.certs[id] = c
	return c, nil
}

// NextRefresh returns the earliest RefreshAt among cached certificates, for
// a timer that pushes new secrets; false when nothing is cached.
func (s *Store) NextRefresh() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, c := range s.certs {
		if r := c.RefreshAt(); next.IsZero() || r.Before(next) {
			next = r
		}
	}
	return next, !next.IsZero()
}

// Forget drops the cached certificate for id (a workload that went away).
func (s *Store) Forget(id Identity) {
	if id.TrustDomain == "" {
		id.TrustDomain = s.ca.trustDomain
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.certs, id)
}
