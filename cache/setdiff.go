package cache

// A change to the mesh gives most proxies a new set of some type that
// differs from their previous one in a few resources: one endpoint set of
// 3000, one route configuration. Many proxies make the very same move, from
// one shared set to another, so the difference is worked out once per pair
// of sets and kept on the newer set; a delta stream moving between them then
// looks only at the names that differ (delta.go).

import (
	"slices"
	"weak"
)

// setDiff is what changed from one set to another.
type setDiff struct {
	from    weak.Pointer[typeSet] // the earlier set, held weakly (see typeSet.union)
	changed []string              // names added, or with another version
	removed []string              // names in the earlier set only
}

// keptDiffs bounds how many earlier sets a set remembers its difference
// from. Proxies nearly always come from the set that came before; a stream
// that comes from an older one is compared name by name, once per pair.
const keptDiffs = 4

// diffFrom returns what changed from prev to s, worked out once per pair
// while s remembers it.
func (s *typeSet) diffFrom(prev *typeSet) *setDiff {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.diffs {
		if d.from.Value() == prev {
			return d
		}
	}
	d := compareSets(prev, s)
	s.diffs = slices.DeleteFunc(s.diffs, func(d *setDiff) bool { return d.from.Value() == nil })
	if len(s.diffs) >= keptDiffs {
		s.diffs = s.diffs[1:]
	}
	s.diffs = append(s.diffs, d)
	return d
}

// compareSets compares two sets name by name.
func compareSets(prev, next *typeSet) *setDiff {
	d := &setDiff{from: weak.Make(prev)}
	if prev == next {
		return d
	}
	for _, n := range next.order {
		if v, ok := prev.versions[n]; !ok || v != next.versions[n] {
			d.changed = append(d.changed, n)
		}
	}
	for _, n := range prev.order {
		if _, ok := next.versions[n]; !ok {
			d.removed = append(d.removed, n)
		}
	}
	return d
}
