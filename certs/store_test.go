package certs

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestStoreRotation(t *testing.T) {
	clk := newClock()
	ca := mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: 2 * time.Minute, Now: clk.Now})
	s := NewStore(ca)
	if _, ok := s.NextRefresh(); ok {
		t.Error("NextRefresh of an empty store reports a time")
	}
	web := Identity{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "web"}
	first, err := s.Get(web)
	if err != nil {
		t.Fatal(err)
	}
	refresh := t0.Add(80 * time.Second) // 2/3 of [now, now+2m]
	if next, ok := s.NextRefresh(); !ok || !next.Equal(refresh) {
		t.Errorf("NextRefresh = %s, %v; want %s", next, ok, refresh)
	}

	clk.Set(refresh.Add(-time.Second))
	again, err := s.Get(web)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatal("Get before RefreshAt issued a new certificate")
	}
	// An identity without trust domain names the same entry.
	if c, _ := s.Get(Identity{Namespace: "default", ServiceAccount: "web"}); c != first {
		t.Error("empty trust domain did not resolve to the cached certificate")
	}

	clk.Set(refresh)
	second, err := s.Get(web)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("Get at RefreshAt returned the old certificate")
	}
	if second.Identity != web || second.Leaf.URIs[0].String() != first.Leaf.URIs[0].String() {
		t.Errorf("rotated certificate has identity %+v", second.Identity)
	}
	if !second.NotAfter.After(first.NotAfter) {
		t.Error("rotated certificate does not outlive the old one")
	}
	if next, _ := s.NextRefresh(); !next.Equal(refresh.Add(80 * time.Second)) {
		t.Errorf("NextRefresh after rotation = %s, want %s", next, refresh.Add(80*time.Second))
	}

	s.Forget(web)
	if _, ok := s.NextRefresh(); ok {
		t.Error("Forget left the certificate cached")
	}
	third, err := s.Get(web)
	if err != nil {
		t.Fatal(err)
	}
	if third == second {
		t.Error("Get after Forget returned the forgotten certificate")
	}
}

// TestStoreNextRefreshIsEarliest: NextRefresh is the earliest certificate's
// refresh, and, kept as certificates come, it follows them as they go: the
// earliest forgotten, the next one is earliest; every one forgotten as due,
// none.
func TestStoreNextRefreshIsEarliest(t *testing.T) {
	clk := newClock()
	ca := mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: 2 * time.Minute, Now: clk.Now})
	s := NewStore(ca)
	early := Identity{Namespace: "a", ServiceAccount: "early"}
	if _, err := s.Get(early); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(30 * time.Second))
	if _, err := s.Get(Identity{Namespace: "a", ServiceAccount: "late"}); err != nil {
		t.Fatal(err)
	}
	if next, _ := s.NextRefresh(); !next.Equal(t0.Add(80 * time.Second)) {
		t.Fatalf("NextRefresh = %s, want the earlier certificate's %s", next, t0.Add(80*time.Second))
	}
	s.Forget(early)
	if next, _ := s.NextRefresh(); !next.Equal(t0.Add(110 * time.Second)) {
		t.Errorf("NextRefresh after the earliest was forgotten = %s, want the other's %s", next, t0.Add(110*time.Second))
	}
	if _, err := s.Get(early); err != nil { // issued again at t0+30s, like the other
		t.Fatal(err)
	}
	clk.Set(t0.Add(110 * time.Second))
	s.ForgetDue()
	if next, ok := s.NextRefresh(); ok {
		t.Errorf("NextRefresh after every certificate was forgotten as due = %s; want none", next)
	}
}

// BenchmarkNextRefresh: the rotation loop asks every few seconds; with
// 2000 identities cached, the answer must not cost a look at each.
func BenchmarkNextRefresh(b *testing.B) {
	s := NewStore(mustLoad(b, Options{Dir: b.TempDir()}))
	for i := range 2000 {
		if _, err := s.Get(Identity{Namespace: "default", ServiceAccount: "sa-" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		s.NextRefresh()
	}
}

func TestStoreConcurrent(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir()})
	s := NewStore(ca)
	id := Identity{Namespace: "default", ServiceAccount: "web"}
	got := make([]*Cert, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			c, err := s.Get(id)
			if err != nil {
				t.Error(err)
			}
			got[i] = c
			s.NextRefresh()
		})
	}
	wg.Wait()
	for _, c := range got {
		if c != got[0] {
			t.Fatal("concurrent Gets for one identity issued different certificates")
		}
	}
	if _, err := s.Get(Identity{Namespace: "default"}); err == nil {
		t.Error("Get accepted an invalid identity")
	}
}

// Callers asking at once for the certificate of one identity share one
// issuance, kept on disk once; callers for other identities do not wait
// for it.
func TestStoreIssuesOncePerIdentityConcurrently(t *testing.T) {
	ca := mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: time.Hour})
	s := NewPersistentStore(ca, t.TempDir())
	ids := []Identity{{Namespace: "default", ServiceAccount: "a"}, {Namespace: "default", ServiceAccount: "b"}}
	const callers = 16
	got := make([][]*Cert, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		got[i] = make([]*Cert, callers)
		for j := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.Get(id)
				if err != nil {
					t.Error(err)
				}
				got[i][j] = c
			}()
		}
	}
	wg.Wait()
	for i, certs := range got {
		for _, c := range certs {
			if c == nil || c != certs[0] {
				t.Fatalf("%s: callers got different certificates: one issuance each was expected", ids[i].ServiceAccount)
			}
		}
	}
	if got[0][0] == got[1][0] {
		t.Fatal("two identities share a certificate")
	}
	if len(s.issuing) != 0 {
		t.Errorf("%d issuances still recorded as in progress", len(s.issuing))
	}
}

// ForgetDue drops only the certificates due for refresh, so that one no
// proxy asks for again does not keep NextRefresh in the past.
func TestStoreForgetDue(t *testing.T) {
	clk := newClock()
	s := NewStore(mustLoad(t, Options{Dir: t.TempDir(), CertLifetime: 2 * time.Minute, Now: clk.Now}))
	gone := Identity{Namespace: "default", ServiceAccount: "gone"}
	kept := Identity{Namespace: "default", ServiceAccount: "kept"}
	for _, id := range []Identity{gone, kept} {
		if _, err := s.Get(id); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(t0.Add(90 * time.Second)) // past both RefreshAt (80 s)
	renewed, err := s.Get(kept)
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := s.NextRefresh(); next.After(clk.Now()) {
		t.Fatalf("NextRefresh %s: want the unused certificate's, already past", next)
	}
	s.ForgetDue()
	if next, ok := s.NextRefresh(); !ok || !next.Equal(renewed.RefreshAt()) {
		t.Fatalf("after ForgetDue, NextRefresh = %s, %v; want the renewed certificate's %s", next, ok, renewed.RefreshAt())
	}
	if c, _ := s.Get(kept); c != renewed {
		t.Error("ForgetDue dropped a certificate that is not due")
	}
}
