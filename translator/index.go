package translator

import (
	"strings"
	"sync"

	"github.com/minimesh/minimesh/mesh"
)

// index gives fast lookups into a mesh snapshot. It is built once per
// snapshot and shared by every proxy translated from that snapshot.
type index struct {
	snap        *mesh.Snapshot
	trustDomain string
	services    map[string]*mesh.Service         // by hostname
	rules       map[string]*mesh.DestinationRule // by host
	routes      map[string]*mesh.VirtualService  // by host
	workloads   map[string]*mesh.Workload        // by node ID, "<name>.<namespace>"
	// Sidecars with a selector by one of its labels, and the namespace-wide
	// ones by namespace (see sidecarFor).
	sidecarsByLabel map[sidecarLabel][]*mesh.Sidecar
	sidecarsWide    map[string]*mesh.Sidecar
	memo            memo   // what proxies share, built once
	carry           *carry // per-proxy messages, reused across snapshots

	inboundOnce sync.Once
	inbound     map[*mesh.Workload][]inboundPort // see inboundPorts
}

// Index prepares a snapshot for translation. Translating many proxies from
// one Index shares the lookups.
type Index = *index

// NewIndex builds the lookups for snap.
func NewIndex(snap *mesh.Snapshot, opts Options) Index { return NewIndexFrom(snap, opts, nil) }

// NewIndexFrom is NewIndex for the snapshot that follows prev's (nil for
// none): the per-proxy messages prev handed out are handed out again where
// their inputs did not change, and so are its route configurations and
// the clusters of unchanged services after a change of endpoints only (see
// carry.go).
func NewIndexFrom(snap *mesh.Snapshot, opts Options, prev Index) Index {
	var prevCarry *carry
	if prev != nil {
		prevCarry = prev.carry
	}
	if opts.TrustDomain == "" {
		opts.TrustDomain = "cluster.local"
	}
	ix := &index{
		carry:       newCarry(prevCarry),
		snap:        snap,
		trustDomain: opts.TrustDomain,
		memo: memo{
			clusters:          map[memoClusterKey]builtCluster{},
			views:             map[viewKey]*view{},
			httpRoutes:        map[viewKey]builtRoutes{},
			outbound:          map[outboundKey]*outboundSet{},
			transparent:       map[viewKey]*transparentSet{},
			transparentRoutes: map[viewKey]*routeSet{},
		},
		services: map[string]*mesh.Service{},
		rules:    map[string]*mesh.DestinationRule{},
		routes:   map[string]*mesh.VirtualService{},
	}
	ix.workloads = make(map[string]*mesh.Workload, len(snap.Workloads))
	for _, w := range snap.Workloads {
		ix.workloads[w.ID()] = w
	}
	for _, s := range snap.Services {
		ix.services[s.Hostname] = s
	}
	ix.indexSidecars()
	for _, dr := range snap.DestinationRules {
		if _, taken := ix.rules[dr.Host]; !taken {
			ix.rules[dr.Host] = dr
		}
	}
	for _, vs := range snap.VirtualServices {
		for _, h := range vs.Hosts {
			if _, taken := ix.routes[h]; !taken {
				ix.routes[h] = vs
			}
		}
	}
	if prev != nil {
		ix.carryShared(prev)
	}
	return ix
}

// domainSuffix is the cluster domain, "cluster.local" unless configured.
func (ix *index) domainSuffix() string {
	if ix.snap.DomainSuffix != "" {
		return ix.snap.DomainSuffix
	}
	return "cluster.local"
}

// aliases lists the names by which a proxy in namespace ns can call a
// service, most specific first. For "my-app.default.svc.cluster.local" and a
// proxy in "default": the FQDN, "my-app.default.svc", "my-app.default" and
// "my-app". Hosts that are not Kubernetes-style service names (for example
// "api.example.com") have only themselves.
func (ix *index) aliases(s *mesh.Service, ns string) []string {
	suffix := ".svc." + ix.domainSuffix()
	base, ok := strings.CutSuffix(s.Hostname, suffix)
	if !ok {
		return []string{s.Hostname}
	}
	name, svcNS, ok := strings.Cut(base, ".")
	if !ok || strings.Contains(svcNS, ".") {
		return []string{s.Hostname}
	}
	out := []string{s.Hostname, base + ".svc", base}
	if svcNS == ns {
		out = append(out, name)
	}
	return out
}

// resolve finds the service a proxy in namespace ns means by host, trying
// the host as written and then as a short or partial Kubernetes name.
func (ix *index) resolve(host, ns string) *mesh.Service {
	if s, ok := ix.services[host]; ok {
		return s
	}
	suffix := ix.domainSuffix()
	var candidates []string
	switch strings.Count(host, ".") {
	case 0: // "my-app"
		candidates = []string{host + "." + ns + ".svc." + suffix}
	case 1: // "my-app.default"
		candidates = []string{host + ".svc." + suffix}
	}
	if strings.HasSuffix(host, ".svc") { // "my-app.default.svc"
		candidates = append(candidates, host+"."+suffix)
	}
	for _, c := range candidates {
		if s, ok := ix.services[c]; ok {
			return s
		}
	}
	return nil
}

// subset returns the named subset of host, and whether
// the subset exists.
func (ix *index) subset(host, name string) (*mesh.Subset, bool) {
	dr := ix.rules[host]
	if dr == nil {
		return nil, false
	}
	for i := range dr.Subsets {
		if dr.Subsets[i].Name == name {
			return &dr.Subsets[i], true
		}
	}
	return nil, false
}
