package main

// The changes the load generator makes to the config directory, and how
// it recognises each one in a simulated Envoy's state.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/synth"
)

// Files of the config directory. The mesh is in meshFile except the
// VirtualService the test edits, which has a file of its own; the other
// edits add files.
const (
	meshFile     = "mesh.yaml"
	vsFile       = "svc-0000-virtualservice.yaml"
	endpointFile = "xds-load-endpoint.yaml"
	paFile       = "xds-load-peerauthentication.yaml"

	// endpointAddress is the added endpoint: outside synth's 10.0-253.x.y.
	endpointAddress = "10.254.0.1"
)

// Change kinds.
const (
	kindVS       = "vs"
	kindEndpoint = "endpoint"
	kindPA       = "pa"
)

var allKinds = []string{kindVS, kindEndpoint, kindPA}

// meshFiles is the initial content of the config directory.
func meshFiles(o synth.Options) map[string][]byte {
	target := synth.ServiceName(0)
	var mesh, vs []synth.Object
	for _, obj := range synth.Generate(o) {
		if obj.Kind == "VirtualService" && obj.Name == target {
			vs = append(vs, obj)
		} else {
			mesh = append(mesh, obj)
		}
	}
	return map[string][]byte{meshFile: synth.Join(mesh), vsFile: synth.Join(vs)}
}

// writeFile replaces a file atomically (write a hidden temporary file,
// which the watcher ignores, then rename), as editors and kubectl-style
// tools do; it returns just before the rename, the moment the change
// becomes visible.
func writeFile(dir, name string, data []byte, visible func()) error {
	tmp := filepath.Join(dir, ".xds-load-"+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if visible != nil {
		visible()
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// change is one edit and how to recognise it.
type change struct {
	kind        string
	description string
	typeURL     string // the type every affected proxy gets a new version of
	apply       func(visible func()) error
	// expected reports whether a proxy must see the change (it holds the
	// resource the change is about), before the change is made.
	expected func(p *proxy) bool
	// seen reports whether the update u to a proxy carries the change.
	seen func(p *proxy, u envoysim.Update) bool
}

// target names what the changes are about.
type target struct {
	dir, ns, rootNS, suffix string
}

func (t target) service() string { return synth.ServiceName(0) }

// cluster is the outbound cluster (and EDS name) of subset v1 of the
// target service.
func (t target) cluster() string {
	return fmt.Sprintf("outbound|80|v1|%s.%s.svc.%s", t.service(), t.ns, t.suffix)
}

// makeChange returns the i-th change (from 1) of a kind.
func (t target) makeChange(kind string, i int) change {
	switch kind {
	case kindVS:
		w1 := 80 - 10*((i-1)%8) // 80/20, 70/30, ... 10/90, never the initial 90/10
		cluster := t.cluster()
		return change{
			kind: kind, description: fmt.Sprintf("VirtualService %s weights 90/10 -> %d/%d", t.service(), w1, 100-w1),
			typeURL: resourcev3.RouteType,
			apply: func(visible func()) error {
				return writeFile(t.dir, vsFile, synth.VirtualService(t.service(), t.ns, w1, 100-w1).YAML, visible)
			},
			expected: func(p *proxy) bool { return routeWeight(p.env, cluster) >= 0 },
			seen:     func(p *proxy, _ envoysim.Update) bool { return routeWeight(p.env, cluster) == int64(w1) },
		}
	case kindEndpoint:
		add := i%2 == 1
		cla := t.cluster()
		desc := "endpoint " + endpointAddress + " added to " + cla
		if !add {
			desc = "endpoint " + endpointAddress + " removed from " + cla
		}
		return change{
			kind: kind, description: desc, typeURL: resourcev3.EndpointType,
			apply: func(visible func()) error {
				if !add {
					visible()
					return os.Remove(filepath.Join(t.dir, endpointFile))
				}
				w := synth.Workload{Name: t.service() + "-v1-xdsload", Namespace: t.ns, Service: t.service(),
					Version: "v1", Address: endpointAddress}
				return writeFile(t.dir, endpointFile, synth.WorkloadEntry(w).YAML, visible)
			},
			expected: func(p *proxy) bool { return p.env.Resource(resourcev3.EndpointType, cla) != nil },
			seen: func(p *proxy, u envoysim.Update) bool {
				return slices.Contains(u.Names, cla) && hasEndpoint(p.env, cla, endpointAddress) == add
			},
		}
	case kindPA:
		mode := "STRICT"
		if i%2 == 0 {
			mode = "PERMISSIVE"
		}
		return change{
			kind: kind, description: fmt.Sprintf("mesh-wide PeerAuthentication %s (%s/default)", mode, t.rootNS),
			typeURL: resourcev3.ListenerType,
			apply: func(visible func()) error {
				return writeFile(t.dir, paFile, synth.PeerAuthentication("default", t.rootNS, mode).YAML, visible)
			},
			expected: func(p *proxy) bool { return p.inboundListener() != nil },
			seen: func(p *proxy, _ envoysim.Update) bool {
				l := p.inboundListener()
				return l != nil && plaintextAccepted(l) == (mode != "STRICT")
			},
		}
	}
	panic("unknown change kind " + kind)
}

// restore undoes every edit (after the run, or before it if an earlier
// run was interrupted). It reports whether anything had to be undone.
func (t target) restore(o synth.Options) (bool, error) {
	changed := false
	for _, name := range []string{endpointFile, paFile} {
		err := os.Remove(filepath.Join(t.dir, name))
		if err == nil {
			changed = true
		} else if !os.IsNotExist(err) {
			return changed, err
		}
	}
	want := meshFiles(o)[vsFile]
	if got, err := os.ReadFile(filepath.Join(t.dir, vsFile)); err != nil || string(got) != string(want) {
		changed = true
		if err := writeFile(t.dir, vsFile, want, nil); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// routeWeight is the weight of a cluster in the proxy's route
// configurations; -1 if no route sends to it.
func routeWeight(e *envoysim.Envoy, cluster string) int64 {
	for _, name := range e.Names(resourcev3.RouteType) {
		rc, _ := e.Resource(resourcev3.RouteType, name).(*routev3.RouteConfiguration)
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if r.GetRoute().GetCluster() == cluster {
					return 100
				}
				for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
					if w.GetName() == cluster {
						return int64(w.GetWeight().GetValue())
					}
				}
			}
		}
	}
	return -1
}

// hasEndpoint reports whether an endpoint set holds an address.
func hasEndpoint(e *envoysim.Envoy, cla, address string) bool {
	c, _ := e.Resource(resourcev3.EndpointType, cla).(*endpointv3.ClusterLoadAssignment)
	for _, le := range c.GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			if lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == address {
				return true
			}
		}
	}
	return false
}

// inboundListener is the listener of a workload's sidecar on its own
// address (ADDRESS_PORT), or nil.
func (p *proxy) inboundListener() *listenerv3.Listener {
	if p.workload == nil {
		return nil
	}
	for _, name := range p.env.Names(resourcev3.ListenerType) {
		if strings.HasPrefix(name, p.workload.Address+"_") {
			l, _ := p.env.Resource(resourcev3.ListenerType, name).(*listenerv3.Listener)
			return l
		}
	}
	return nil
}

// plaintextAccepted reports whether a listener has a filter chain without
// TLS (PERMISSIVE or DISABLE; under STRICT every chain requires TLS).
func plaintextAccepted(l *listenerv3.Listener) bool {
	for _, fc := range l.GetFilterChains() {
		if fc.GetTransportSocket() == nil {
			return true
		}
	}
	return l.GetDefaultFilterChain() != nil && l.GetDefaultFilterChain().GetTransportSocket() == nil
}
