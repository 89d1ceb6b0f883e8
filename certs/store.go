package certs

import (
	"errors"
	"sync"
	"time"
)

// Store caches one current certificate per Identity and re-issues it once
// its RefreshAt has passed (on Get). Safe for concurrent use.
//
// Issuing a certificate and keeping it on disk (two files written, not
// synced: see persist.go) takes about half a millisecond (BenchmarkIssueKept;
// 2 ms when the files were synced); it is done outside the store's lock, one
// identity at a time, so that a thousand identities connecting at once are
// issued in parallel and a cached certificate is never waited for.
type Store struct {
	ca      *CA
	dir     string // where certificates are kept across restarts; "" for memory only
	mu      sync.Mutex
	certs   map[Identity]*Cert
	issuing map[Identity]*issue // identities being loaded or issued

	// next is the earliest RefreshAt among certs (zero: none), kept as
	// certificates are added; a certificate replaced or dropped makes it
	// stale, and NextRefresh looks at every one again. The rotation loop
	// asks for it every few seconds: with 2000 identities, looking at
	// every certificate each time cost 0.14 ms in a benchmark, and 8 ms
	// of CPU a second in a profile of a server holding 2000 proxies
	// (certificates rarely touched are not in the CPU's caches).
	next      time.Time
	nextStale bool
}

// issue is one identity's certificate being loaded or issued; done is
// closed when c or err is set.
type issue struct {
	done chan struct{}
	c    *Cert
	err  error
}

// NewStore returns an empty Store issuing from ca.
func NewStore(ca *CA) *Store {
	return &Store{ca: ca, certs: map[Identity]*Cert{}, issuing: map[Identity]*issue{}}
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
	cached := s.certs[id]
	if cached != nil && s.ca.now().Before(cached.RefreshAt()) {
		s.mu.Unlock()
		return cached, nil
	}
	if in := s.issuing[id]; in != nil {
		s.mu.Unlock()
		<-in.done // another caller is issuing it: share its result
		return in.c, in.err
	}
	in := &issue{done: make(chan struct{}), err: errIssuanceFailed}
	s.issuing[id] = in
	s.mu.Unlock()
	defer func() { // (also if issuing panics: the waiters get an error)
		s.mu.Lock()
		if in.err == nil {
			s.add(id, in.c)
		}
		delete(s.issuing, id)
		s.mu.Unlock()
		close(in.done)
	}()
	in.c, in.err = s.loadOrIssue(id, cached == nil)
	return in.c, in.err
}

var errIssuanceFailed = errors.New("issuing the certificate failed")

// loadOrIssue returns the certificate kept on disk for id (if fromDisk,
// and there is one still good), or else issues one and keeps it.
func (s *Store) loadOrIssue(id Identity, fromDisk bool) (*Cert, error) {
	if s.dir != "" && fromDisk {
		if c := s.load(id); c != nil {
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
	return c, nil
}

// NextRefresh returns the earliest RefreshAt among cached certificates, for
// a timer that pushes new secrets; false when nothing is cached.
func (s *Store) NextRefresh() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextStale {
		s.next, s.nextStale = time.Time{}, false
		for _, c := range s.certs {
			if r := c.RefreshAt(); s.next.IsZero() || r.Before(s.next) {
				s.next = r
			}
		}
	}
	return s.next, !s.next.IsZero()
}

// add caches c as id's certificate. s.mu is held.
func (s *Store) add(id Identity, c *Cert) {
	if _, replaced := s.certs[id]; replaced {
		s.nextStale = true // it may have been the earliest
	} else if r := c.RefreshAt(); !s.nextStale && (s.next.IsZero() || r.Before(s.next)) {
		s.next = r
	}
	s.certs[id] = c
}

// ForgetDue drops the cached certificates due for refresh. Called right
// after every connected proxy was given its certificate (re-issued if it
// was due), it forgets those of identities no proxy uses any more, which
// would otherwise stay due, and keep NextRefresh in the past, for ever.
func (s *Store) ForgetDue() {
	now := s.ca.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.certs {
		if !now.Before(c.RefreshAt()) {
			delete(s.certs, id)
			s.nextStale = true
		}
	}
}

// Forget drops the cached certificate for id (a workload that went away).
func (s *Store) Forget(id Identity) {
	if id.TrustDomain == "" {
		id.TrustDomain = s.ca.trustDomain
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.certs[id]; ok {
		delete(s.certs, id)
		s.nextStale = true
	}
}
