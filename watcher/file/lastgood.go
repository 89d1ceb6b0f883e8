package file

import (
	"fmt"

	"github.com/minimesh/minimesh/mesh"
)

// An object that was valid and becomes invalid keeps being served in its
// last good version, the way an admission webhook would have refused the
// bad edit on Kubernetes: a typo in a VirtualService during a canary must
// not send half the traffic to the new version. The error is still
// reported, so the file gets fixed.

// objectKey names an object the way diagnostics do: "VirtualService default/my-app-vs".
func objectKey(r mesh.Ref) string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// presentKeys lists the objects that made it into a snapshot.
func presentKeys(s *mesh.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, x := range s.Services {
		out[objectKey(x.Source)] = true
	}
	for _, x := range s.Workloads {
		out[objectKey(x.Source)] = true
	}
	for _, x := range s.VirtualServices {
		out[objectKey(x.Source)] = true
	}
	for _, x := range s.DestinationRules {
		out[objectKey(x.Source)] = true
	}
	return out
}

// buildKeepingLastGood builds the mesh from objs; objects that were
// rejected but have a last good version are replaced by it. It returns the
// snapshot, the diagnostics about the files as they are, and a note for
// each object served from its last good version.
func (w *Watcher) buildKeepingLastGood(objs []mesh.Object, rejected map[string]bool) (*mesh.Snapshot, []mesh.Diagnostic, []error) {
	opts := mesh.Options{DomainSuffix: w.cfg.DomainSuffix, RootNamespace: w.cfg.RootNamespace}
	snap, diags := mesh.Build(objs, opts)
	for _, d := range diags {
		if d.Severity == mesh.SeverityError && d.Object != "" {
			rejected[d.Object] = true
		}
	}
	present := presentKeys(snap)
	var restore []mesh.Object
	for key := range rejected {
		if good, ok := w.lastGood[key]; ok && !present[key] {
			restore = append(restore, good)
		}
	}
	var notes []error
	if len(restore) > 0 {
		replaced := map[string]bool{}
		for _, o := range restore {
			replaced[objectKey(o.Ref)] = true
		}
		merged := make([]mesh.Object, 0, len(objs)+len(restore))
		for _, o := range objs {
			if !replaced[objectKey(o.Ref)] {
				merged = append(merged, o)
			}
		}
		merged = append(merged, restore...)
		snap, _ = mesh.Build(merged, opts)
		present = presentKeys(snap)
		objs = merged
		for _, o := range restore {
			if present[objectKey(o.Ref)] {
				notes = append(notes, fmt.Errorf("%s: invalid; serving its last good version (from %s) until it is fixed",
					objectKey(o.Ref), o.Ref.Source))
			}
		}
	}
	// Remember what is served now; forget objects that are gone for good
	// (deleted, not rejected).
	next := map[string]mesh.Object{}
	for _, o := range objs {
		if key := objectKey(o.Ref); present[key] {
			next[key] = o
		}
	}
	for key, o := range w.lastGood {
		if _, kept := next[key]; !kept && rejected[key] {
			next[key] = o
		}
	}
	w.lastGood = next
	return snap, diags, notes
}
