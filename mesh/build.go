package mesh

import (
	"cmp"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
)

// Options for Build.
type Options struct {
	// DomainSuffix is the cluster domain; DefaultDomainSuffix when empty.
	DomainSuffix string
	// RootNamespace holds the mesh-wide policies; DefaultRootNamespace
	// when empty.
	RootNamespace string
}

// Build converts and cross-validates objects into a Snapshot. An invalid
// object is left out and reported (SeverityError); everything else is kept.
// The one exception is a host claimed twice: the first ServiceEntry or
// VirtualService in namespace/name order keeps it, and a later one loses
// only that host.
//
// The output does not depend on the order of objs, and shares no map with
// them.
func Build(objs []Object, opts Options) (*Snapshot, []Diagnostic) {
	suffix := cmp.Or(opts.DomainSuffix, DefaultDomainSuffix)
	b := &builder{
		reg: registry{
			domainSuffix: suffix,
			services:     map[string]*Service{},
			rules:        map[string]*DestinationRule{},
		},
		rootNamespace: cmp.Or(opts.RootNamespace, DefaultRootNamespace),
	}
	byKind := b.group(objs)
	// Pods and Kubernetes Services come first: the platform's registry
	// keeps its names when a ServiceEntry or WorkloadEntry claims them too.
	b.buildWorkloads(slices.Concat(byKind["Pod"], byKind["WorkloadEntry"]))
	b.buildServices(slices.Concat(byKind["Service"], byKind["ServiceEntry"]))
	b.buildDestinationRules(byKind["DestinationRule"])
	b.buildVirtualServices(byKind["VirtualService"])
	b.buildPeerAuthentications(byKind["PeerAuthentication"])
	b.buildSidecars(byKind["Sidecar"])
	return &Snapshot{
		DomainSuffix:        suffix,
		Services:            b.services(),
		Workloads:           b.workloads,
		VirtualServices:     b.virtualServices,
		DestinationRules:    b.destinationRules,
		PeerAuthentications: b.peerAuthentications,
		Sidecars:            b.sidecars,
		RootNamespace:       b.rootNamespace,
	}, b.diags
}

// builder holds the state of one Build.
type builder struct {
	reg                 registry
	rootNamespace       string
	workloads           []*Workload
	destinationRules    []*DestinationRule
	virtualServices     []*VirtualService
	peerAuthentications []*PeerAuthentication
	sidecars            []*Sidecar
	diags               []Diagnostic
}

// registry is what converters look things up in: the services and the
// DestinationRules built so far.
type registry struct {
	domainSuffix string
	services     map[string]*Service         // by hostname
	hostnames    []string                    // the keys of services, sorted
	rules        map[string]*DestinationRule // by host
}

// anyService reports whether host (or wildcard) covers at least one service.
func (g *registry) anyService(host string) bool {
	if g.services[host] != nil {
		return true
	}
	return isWildcard(host) && slices.ContainsFunc(g.hostnames, func(h string) bool {
		return hostMatches(host, h)
	})
}

// destinationRuleFor returns the DestinationRule that applies to host: the
// one for exactly that host, or else the one with the most specific
// wildcard covering it, or nil.
func (g *registry) destinationRuleFor(host string) *DestinationRule {
	if dr := g.rules[host]; dr != nil {
		return dr
	}
	var best *DestinationRule
	for pattern, dr := range g.rules {
		if hostMatches(pattern, host) && (best == nil || len(pattern) > len(best.Host)) {
			best = dr
		}
	}
	return best
}

// group sorts objects by kind, namespace, name and source, and returns them
// by kind. Objects that cannot be built (unknown kind, spec of the wrong
// type, the same object twice) are reported and left out.
func (b *builder) group(objs []Object) map[string][]Object {
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, compareObjects)
	byKind := map[string][]Object{}
	for i, obj := range sorted {
		r := newReport(obj.Ref, &b.diags)
		newSpec, known := kinds[specKind(obj.Ref.Kind)]
		switch {
		case !known:
			r.errorf("kind", "kind %q is not one minimesh builds", obj.Ref.Kind)
		case obj.Spec == nil || proto.MessageName(obj.Spec) != proto.MessageName(newSpec()):
			r.errorf("spec", "spec is %T, want %T", obj.Spec, newSpec())
		case i > 0 && sameObject(sorted[i-1].Ref, obj.Ref):
			r.errorf("metadata.name", "also defined in %s; only that one is used", sorted[i-1].Ref.Source)
		default:
			byKind[obj.Ref.Kind] = append(byKind[obj.Ref.Kind], obj)
		}
	}
	return byKind
}

// compareObjects orders objects by kind, namespace, name, then source.
func compareObjects(a, b Object) int {
	return cmp.Or(
		cmp.Compare(a.Ref.Kind, b.Ref.Kind),
		cmp.Compare(a.Ref.Namespace, b.Ref.Namespace),
		cmp.Compare(a.Ref.Name, b.Ref.Name),
		cmp.Compare(a.Ref.Source, b.Ref.Source),
	)
}

// sameObject reports whether two references name the same object.
func sameObject(a, b Ref) bool {
	return a.Kind == b.Kind && a.Namespace == b.Namespace && a.Name == b.Name
}

// buildWorkloads converts the Pods and WorkloadEntries, and sorts the
// workloads by namespace and name. A node ID names one workload: a second
// object with the same namespace and name is left out.
func (b *builder) buildWorkloads(objs []Object) {
	byID := map[string]*Workload{}
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		w := convertWorkloadEntry(obj.Ref, obj.Spec.(*networking.WorkloadEntry), r)
		if w == nil {
			continue
		}
		if owner := byID[w.ID()]; owner != nil {
			r.errorf("metadata.name", "workload %s is already %s (%s); a node ID names one workload",
				w.ID(), objectName(owner.Source), owner.Source.Source)
			continue
		}
		byID[w.ID()] = w
		b.workloads = append(b.workloads, w)
	}
	slices.SortStableFunc(b.workloads, func(x, y *Workload) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
}

// buildServices converts the ServiceEntries. A host declared twice belongs
// to the first ServiceEntry in namespace/name order.
func (b *builder) buildServices(objs []Object) {
	selectable := indexWorkloads(b.workloads)
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		se := obj.Spec.(*networking.ServiceEntry)
		for _, svc := range convertServiceEntry(obj.Ref, se, selectable, b.reg.domainSuffix, r) {
			if owner := b.reg.services[svc.Hostname]; owner != nil {
				r.errorf(fieldPath("spec.hosts").index(slices.Index(se.GetHosts(), svc.Hostname)),
					"host %q is already declared by %s (%s); the first in namespace/name order wins",
					svc.Hostname, objectName(owner.Source), owner.Source.Source)
				continue
			}
			b.reg.services[svc.Hostname] = svc
		}
	}
	b.reg.hostnames = slices.Sorted(maps.Keys(b.reg.services))
}

// buildDestinationRules converts the DestinationRules. A host with two rules
// keeps the first in namespace/name order; the other is left out.
func (b *builder) buildDestinationRules(objs []Object) {
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		dr := convertDestinationRule(obj.Ref, obj.Spec.(*networking.DestinationRule), b.reg.domainSuffix, r)
		if dr == nil {
			continue
		}
		if owner := b.reg.rules[dr.Host]; owner != nil {
			r.errorf("spec.host", "host %q already has %s (%s); the first in namespace/name order wins",
				dr.Host, objectName(owner.Source), owner.Source.Source)
			continue
		}
		b.checkDestinationRule(dr, r)
		b.reg.rules[dr.Host] = dr
		b.destinationRules = append(b.destinationRules, dr)
	}
}

// checkDestinationRule warns about a rule that does nothing yet: its host
// matches no service, or a subset selects no endpoint. These are warnings,
// not errors: services and endpoints come and go.
func (b *builder) checkDestinationRule(dr *DestinationRule, r *report) {
	if !b.reg.anyService(dr.Host) {
		r.warnf("spec.host", "%q matches no service (known hosts: %s)%s",
			dr.Host, listNames(b.reg.hostnames), didYouMean(dr.Host, b.reg.hostnames))
		return
	}
	svc := b.reg.services[dr.Host]
	if svc == nil {
		return // a wildcard: subsets may select endpoints of some services only
	}
	for i, s := range dr.Subsets {
		if !slices.ContainsFunc(svc.Endpoints, func(e *Endpoint) bool { return labelsMatch(s.Labels, e.Labels) }) {
			r.warnf(fieldPath("spec.subsets").index(i).field("labels"),
				"subset %q selects no endpoint of %s (yet)", s.Name, svc.Hostname)
		}
	}
}

// buildVirtualServices converts the VirtualServices. A host routed by two of
// them belongs to the first in namespace/name order; the later one loses
// that host and keeps its others.
func (b *builder) buildVirtualServices(objs []Object) {
	claimed := map[string]*VirtualService{}
	for _, obj := range objs {
		r := newReport(obj.Ref, &b.diags)
		spec := obj.Spec.(*networking.VirtualService)
		vs := convertVirtualService(obj.Ref, spec, &b.reg, r)
		if vs == nil {
			continue
		}
		vs.Hosts = slices.DeleteFunc(vs.Hosts, func(host string) bool {
			owner := claimed[host]
			if owner != nil {
				r.errorf(b.hostPath(spec.GetHosts(), host, obj.Ref.Namespace),
					"host %q is already routed by %s (%s); the first in namespace/name order wins "+
						"(Istio merges VirtualServices only on gateways)",
					host, objectName(owner.Source), owner.Source.Source)
			}
			return owner != nil
		})
		if len(vs.Hosts) == 0 {
			continue
		}
		for _, host := range vs.Hosts {
			claimed[host] = vs
		}
		b.virtualServices = append(b.virtualServices, vs)
	}
}

// hostPath returns the path of the entry of hosts that resolves to host.
func (b *builder) hostPath(hosts []string, host, namespace string) fieldPath {
	i := slices.IndexFunc(hosts, func(h string) bool {
		return ResolveHost(h, namespace, b.reg.domainSuffix) == host
	})
	return fieldPath("spec.hosts").index(i)
}

// services returns the services sorted by hostname.
func (b *builder) services() []*Service {
	out := make([]*Service, 0, len(b.reg.hostnames))
	for _, h := range b.reg.hostnames {
		out = append(out, b.reg.services[h])
	}
	return out
}
