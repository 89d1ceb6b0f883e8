package mesh

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The index picks exactly the workloads that matching every workload
// against the selector picks, in the same order.
func TestWorkloadIndexSelectsAsAFullScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, rng.IntN(n)) }
	var workloads []*Workload
	for i := range 300 {
		labels := map[string]string{"app": pick("a", 10)}
		if rng.IntN(2) == 0 {
			labels["version"] = pick("v", 3)
		}
		workloads = append(workloads, &Workload{Name: fmt.Sprintf("w%d", i), Namespace: pick("ns", 3), Labels: labels})
	}
	ix := indexWorkloads(workloads)
	for range 500 {
		namespace := pick("ns", 4) // ns3 has no workload
		selector := map[string]string{}
		if rng.IntN(4) != 0 {
			selector["app"] = pick("a", 11)
		}
		if rng.IntN(2) == 0 {
			selector["version"] = pick("v", 4)
		}
		var want []*Workload
		for _, w := range workloads {
			if w.Namespace == namespace && labelsMatch(selector, w.Labels) {
				want = append(want, w)
			}
		}
		if got := ix.selected(namespace, selector); !slices.Equal(got, want) {
			t.Fatalf("namespace %s, selector %v: index picks %d workloads, a full scan %d", namespace, selector, len(got), len(want))
		}
	}
}
