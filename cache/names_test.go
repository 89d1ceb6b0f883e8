package cache_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minimesh/minimesh/cache"
)

// Proxies that ask for the same list at once, each with its own copy of
// the bytes, all get the one shared Names, decoded once: the others wait
// for it rather than each decoding a copy to throw away.
func TestInternNamesWireConcurrently(t *testing.T) {
	// A list of its own (with -count=N, the last run's may still be
	// interned).
	run := time.Now().UnixNano()
	var names []string
	for i := range 3000 {
		names = append(names, fmt.Sprintf("outbound|80||svc-%04d.run-%d.svc.cluster.local", i, run))
	}
	wire := []byte(strings.Join(names, "\n")) // any encoding: decode below splits it
	var decodes atomic.Int32
	decode := func(b []byte) ([]string, error) {
		decodes.Add(1)
		time.Sleep(20 * time.Millisecond) // a slow decode: the others arrive meanwhile
		return strings.Split(string(b), "\n"), nil
	}
	const askers = 16
	got := make([]*cache.Names, askers)
	var wg sync.WaitGroup
	for i := range askers {
		wg.Go(func() {
			n, err := cache.InternNamesWire(append([]byte(nil), wire...), decode)
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		})
	}
	wg.Wait()
	for i, n := range got {
		if n != got[0] {
			t.Fatalf("asker %d got a Names of its own", i)
		}
	}
	if n := decodes.Load(); n != 1 {
		t.Fatalf("%d askers, %d decodes; want 1", askers, n)
	}
	if l := got[0].List(); len(l) != len(names) || l[0] != names[0] || l[len(l)-1] != names[len(names)-1] {
		t.Fatalf("interned list has %d names, want %d", len(l), len(names))
	}
	// Another list of the same length is not taken for it.
	other := []byte(strings.Replace(string(wire), "svc-0001", "svc-9999", 1))
	n, err := cache.InternNamesWire(other, decode)
	if err != nil {
		t.Fatal(err)
	}
	if n == got[0] || n.List()[1] != strings.Replace(names[1], "svc-0001", "svc-9999", 1) {
		t.Fatal("a different list of the same length came back as the first one")
	}
}
