package mesh

import (
	"strconv"

	security "istio.io/api/security/v1beta1"
)

// buildPeerAuthentications converts the PeerAuthentications. A namespace
// (or the mesh) with two policies without selector keeps the first in
// namespace/name order; the other is left out. Istio keeps the oldest, and
// minimesh has no creation times.
func (b *builder) buildPeerAuthentications(objs []Object) {
	wide := map[string]*PeerAuthentication{} // namespace -> its policy without selector
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		pa := convertPeerAuthentication(obj.Ref, obj.Spec.(*security.PeerAuthentication), b.rootNamespace, r)
		if pa == nil {
			continue
		}
		if pa.Selector == nil {
			if owner := wide[pa.Namespace]; owner != nil {
				r.errorf("spec.selector", "%s, PeerAuthentication %s/%s (%s); "+
					"the first in namespace/name order wins (Istio keeps the oldest)",
					b.alreadyWide(pa.Namespace), owner.Namespace, owner.Name, owner.Source.Source)
				continue
			}
			wide[pa.Namespace] = pa
		}
		b.peerAuthentications = append(b.peerAuthentications, pa)
	}
	b.checkSelectorOverlaps()
}

// alreadyWide says that a policy without selector in namespace meets
// another one.
func (b *builder) alreadyWide(namespace string) string {
	if namespace == b.rootNamespace {
		return "no selector in the root namespace, and the mesh already has a mesh-wide policy"
	}
	return "no selector, and namespace " + strconv.Quote(namespace) + " already has a namespace-wide policy"
}

// overlap is a workload policy that loses a workload to an earlier one.
type overlap struct{ loser, winner *PeerAuthentication }

// checkSelectorOverlaps warns about workloads selected by several policies:
// only one applies to a workload, and which one is not what Istio would
// pick when the later policy in name order is the older one.
func (b *builder) checkSelectorOverlaps() {
	lost := map[overlap][]string{} // -> the workloads, "namespace/name"
	for _, w := range b.workloads {
		var first *PeerAuthentication
		for _, pa := range b.peerAuthentications {
			if !selects(pa, w, b.rootNamespace) {
				continue
			}
			if first == nil {
				first = pa
				continue
			}
			k := overlap{pa, first}
			lost[k] = append(lost[k], w.Namespace+"/"+w.Name)
		}
	}
	if len(lost) == 0 {
		return
	}
	for _, loser := range b.peerAuthentications {
		for _, winner := range b.peerAuthentications {
			workloads := lost[overlap{loser, winner}]
			if workloads == nil {
				continue
			}
			r := newReport(loser.Source, &b.diags)
			r.warnf("spec.selector", "selects %s, which %s (%s) selects too; only one workload policy "+
				"applies: minimesh uses the first in namespace/name order (Istio the oldest), "+
				"so this one does not apply there; make the selectors disjoint",
				workloadList(workloads), objectName(winner.Source), winner.Source.Source)
		}
	}
}

// workloadList renders "workload a/b" or "workloads a/b, a/c".
func workloadList(names []string) string {
	if len(names) == 1 {
		return "workload " + names[0]
	}
	return "workloads " + listNames(names)
}
