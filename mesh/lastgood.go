package mesh

import (
	"fmt"
)

// An object that was valid and becomes invalid keeps being served in its
// last good version, the way an admission webhook would have refused the
// bad edit: a typo in a VirtualService during a canary must not send half
// the traffic to the new version. The error is still reported, so that the
// object gets fixed. Both watchers do this, with a LastGood each.

// LastGood remembers the version of each object that was last served. The
// zero value is ready to use; it is not safe for concurrent use.
type LastGood struct {
	served map[string]Object // by objectName
}

// Build builds objs like Build. An object that is rejected now (by Build,
// or listed in rejected by a caller that refused it before Build) and that
// was served before is served in that last good version instead.
//
// It returns the snapshot, the diagnostics about objs as they are, and a
// note for each object served from its last good version.
func (l *LastGood) Build(objs []Object, rejected map[string]bool, opts Options) (*Snapshot, []Diagnostic, []error) {
	snap, diags := Build(objs, opts)
	rejected = withBuildErrors(rejected, diags)
	present := presentObjects(snap)

	var restore []Object
	for key := range rejected {
		if good, ok := l.served[key]; ok && !present[key] {
			restore = append(restore, good)
		}
	}
	var notes []error
	if len(restore) > 0 {
		objs = replaceObjects(objs, restore)
		snap, _ = Build(objs, opts)
		present = presentObjects(snap)
		for _, o := range restore {
			if present[objectName(o.Ref)] {
				notes = append(notes, fmt.Errorf("%s: invalid; serving its last good version (from %s) until it is fixed",
					objectName(o.Ref), o.Ref.Source))
			}
		}
	}
	l.remember(objs, present, rejected)
	return snap, diags, notes
}

// withBuildErrors returns a copy of rejected with the objects that diags
// report an error about added.
func withBuildErrors(rejected map[string]bool, diags []Diagnostic) map[string]bool {
	out := make(map[string]bool, len(rejected))
	for k, v := range rejected {
		out[k] = v
	}
	for _, d := range diags {
		if d.Severity == SeverityError && d.Object != "" {
			out[d.Object] = true
		}
	}
	return out
}

// replaceObjects returns objs with every object that has a version in
// restore replaced by that version.
func replaceObjects(objs, restore []Object) []Object {
	replaced := map[string]bool{}
	for _, o := range restore {
		replaced[objectName(o.Ref)] = true
	}
	out := make([]Object, 0, len(objs)+len(restore))
	for _, o := range objs {
		if !replaced[objectName(o.Ref)] {
			out = append(out, o)
		}
	}
	return append(out, restore...)
}

// remember records what is served now, and forgets the objects that are
// gone for good (deleted, not rejected).
func (l *LastGood) remember(objs []Object, present, rejected map[string]bool) {
	next := map[string]Object{}
	for _, o := range objs {
		if key := objectName(o.Ref); present[key] {
			next[key] = o
		}
	}
	for key, o := range l.served {
		if _, kept := next[key]; !kept && rejected[key] {
			next[key] = o
		}
	}
	l.served = next
}

// presentObjects lists the objects that made it into a snapshot, by the
// name diagnostics give them.
func presentObjects(s *Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, x := range s.Services {
		out[objectName(x.Source)] = true
	}
	for _, x := range s.Workloads {
		out[objectName(x.Source)] = true
	}
	for _, x := range s.VirtualServices {
		out[objectName(x.Source)] = true
	}
	for _, x := range s.DestinationRules {
		out[objectName(x.Source)] = true
	}
	for _, x := range s.PeerAuthentications {
		out[objectName(x.Source)] = true
	}
	for _, x := range s.Sidecars {
		out[objectName(x.Source)] = true
	}
	return out
}
