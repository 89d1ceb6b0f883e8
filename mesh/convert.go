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
