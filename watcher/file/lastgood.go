package file

import (
	"github.com/minimesh/minimesh/mesh"
)

// buildKeepingLastGood builds the mesh from objs; objects that were
// rejected (rejected holds those the decoder refused) but have a last good
// version are served in it (see mesh.LastGood). It returns the snapshot,
// the diagnostics about the files as they are, and a note for each object
// served from its last good version.
func (w *Watcher) buildKeepingLastGood(objs []mesh.Object, rejected map[string]bool) (*mesh.Snapshot, []mesh.Diagnostic, []error) {
	opts := mesh.Options{DomainSuffix: w.cfg.DomainSuffix, RootNamespace: w.cfg.RootNamespace}
	return w.lastGood.Build(objs, rejected, opts)
}
