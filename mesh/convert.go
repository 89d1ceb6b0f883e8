package mesh

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// Small conversions shared by the converters of every kind.

// count converts a count from the API (an int32 there) into the model,
// reporting negative values.
func count(n int32, path fieldPath, r *report) uint32 {
	if n < 0 {
		r.errorf(path, "must not be negative, got %d", n)
		return 0
	}
	return uint32(n)
}

// duration converts an optional duration from the API into the model (0
// when not set), reporting negative values.
func duration(d *durationpb.Duration, path fieldPath, r *report) time.Duration {
	if d == nil {
		return 0
	}
	if err := d.CheckValid(); err != nil {
		r.errorf(path, "invalid duration: %v", err)
		return 0
	}
	v := d.AsDuration()
	if v < 0 {
		r.errorf(path, "must not be negative, got %s", v)
		return 0
	}
	return v
}

// labelsMatch reports whether labels has every key of selector with the
// same value. An empty selector matches everything, as in Kubernetes.
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// workloadIndex finds the workloads a selector picks without matching the
// selector against every workload of the mesh: a mesh of 1000 services
// and 2000 workloads would otherwise match two million label sets on every
// change.
type workloadIndex struct {
	byNamespace map[string][]*Workload
	byLabel     map[namespacedLabel][]*Workload
}

type namespacedLabel struct{ namespace, key, value string }

// indexWorkloads indexes workloads, keeping their order in every list.
func indexWorkloads(workloads []*Workload) *workloadIndex {
	ix := &workloadIndex{byNamespace: map[string][]*Workload{}, byLabel: map[namespacedLabel][]*Workload{}}
	for _, w := range workloads {
		ix.byNamespace[w.Namespace] = append(ix.byNamespace[w.Namespace], w)
		for k, v := range w.Labels {
			l := namespacedLabel{w.Namespace, k, v}
			ix.byLabel[l] = append(ix.byLabel[l], w)
		}
	}
	return ix
}

// selected returns the workloads of a namespace whose labels match the
// selector, in the order they were indexed.
func (ix *workloadIndex) selected(namespace string, selector map[string]string) []*Workload {
	candidates := ix.byNamespace[namespace]
	for k, v := range selector { // the fewest workloads carrying one of its labels
		if l := ix.byLabel[namespacedLabel{namespace, k, v}]; len(l) < len(candidates) {
			candidates = l
		}
	}
	var out []*Workload
	for _, w := range candidates {
		if labelsMatch(selector, w.Labels) {
			out = append(out, w)
		}
	}
	return out
}
