package main

import (
	"fmt"
	"slices"
	"strings"
)

// tally counts answers per version.
type tally struct {
	total  int
	counts map[string]int
}

// add counts one answer from version.
func (t *tally) add(version string) {
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	t.counts[version]++
	t.total++
}

// String renders the running share of each version, in version order:
// "after 20 requests: v1 90% (18), v2 10% (2)".
func (t tally) String() string {
	versions := make([]string, 0, len(t.counts))
	for v := range t.counts {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	shares := make([]string, len(versions))
	for i, v := range versions {
		n := t.counts[v]
		shares[i] = fmt.Sprintf("%s %d%% (%d)", v, (100*n+t.total/2)/t.total, n)
	}
	return fmt.Sprintf("after %d requests: %s", t.total, strings.Join(shares, ", "))
}
