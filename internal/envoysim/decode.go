package envoysim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Decoder unpacks and validates resources. A Decoder shared by many
// simulated Envoys decodes and validates each distinct resource content
// once: the same bytes always decode to the same message and get the same
// verdict, so the result (immutable from then on) is shared. This keeps a
// load test's own CPU and memory small next to the control plane it
// measures. The cache only grows; use one Decoder per test run.
//
// The Decoder also bounds how many simulated Envoys process a response at
// once (busy). Thousands of Envoys handed a large push at the same moment
// would otherwise all be runnable together, and the goroutines that read
// their connections would wait behind them for seconds: long enough for
// the control plane's TCP user timeout to reset connections whose data is
// not being read. Real Envoys are separate processes; this keeps the
// simulated ones' network side as responsive as theirs.
type Decoder struct {
	busy    chan struct{}
	mu      sync.RWMutex
	byType  map[string]map[string]*resource // type URL -> serialized bytes -> decoded
	strings map[string]string               // interned names and versions (intern)
	hits    atomic.Int64
	misses  atomic.Int64

	// Indexes of large responses, shared by the Envoys that get the same
	// resources (indexedAs), under mu.
	indexes map[indexKey][]indexedResponse
	kept    int
}

// NewDecoder returns an empty shared decoder.
func NewDecoder() *Decoder {
	return &Decoder{byType: map[string]map[string]*resource{}, busy: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// work runs f while no more than GOMAXPROCS others run under d (see
// Decoder); without a Decoder it just runs f.
func (d *Decoder) work(f func()) {
	if d == nil {
		f()
		return
	}
	d.busy <- struct{}{}
	defer func() { <-d.busy }()
	f()
}

// DecoderStats says how much work sharing saved.
type DecoderStats struct {
	Decoded int64 // distinct contents unmarshaled and validated
	Reused  int64 // resources received whose content had been seen before
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats {
	return DecoderStats{Decoded: d.misses.Load(), Reused: d.hits.Load()}
}

// decode unpacks and validates one resource, from the cache if d is not nil.
func (d *Decoder) decode(a *anypb.Any) *resource {
	if d == nil {
		return decodeOne(a)
	}
	t, v := a.GetTypeUrl(), a.GetValue()
	d.mu.RLock()
	r := d.byType[t][string(v)]
	d.mu.RUnlock()
	if r != nil {
		d.hits.Add(1)
		return r
	}
	r = decodeOne(a)
	d.misses.Add(1)
	d.mu.Lock()
	m := d.byType[t]
	if m == nil {
		m = map[string]*resource{}
		d.byType[t] = m
	}
	if prev := m[string(v)]; prev != nil {
		r = prev // decoded concurrently by another Envoy
	} else {
		m[string(v)] = r
	}
	d.mu.Unlock()
	return r
}

// encodedAny is a resource as a response carries it: an Any's type URL
// and value, still encoded, in the response's buffer.
type encodedAny struct{ typeURL, value []byte }

// decodeAll is decode for the resources of a response read off the wire:
// the contents seen before are looked up under one read lock, and only
// new ones are copied and decoded.
func (d *Decoder) decodeAll(in []encodedAny) []*resource {
	out := make([]*resource, len(in))
	var missed []int
	if d != nil {
		d.mu.RLock()
		for i, a := range in {
			if r := d.byType[string(a.typeURL)][string(a.value)]; r != nil {
				out[i] = r
			} else {
				missed = append(missed, i)
			}
		}
		d.mu.RUnlock()
		d.hits.Add(int64(len(in) - len(missed)))
	} else {
		for i := range in {
			missed = append(missed, i)
		}
	}
	for _, i := range missed {
		out[i] = d.decode(&anypb.Any{TypeUrl: string(in[i].typeURL), Value: bytes.Clone(in[i].value)})
	}
	return out
}

// resource is one decoded, validated resource and the names it refers to
// (computed once, when it is decoded).
type resource struct {
	msg  proto.Message
	name string
	err  string // why Envoy would reject it; "" if valid

	eds      string   // EDS cluster: the endpoints it fetches
	rds      []string // listener: the route configurations it fetches
	sds      []string // cluster or listener: the SDS secrets its TLS contexts fetch
	clusters []string // route configuration, or listener's inline routes: the clusters they send to

}

func decodeOne(a *anypb.Any) *resource {
	m, err := a.UnmarshalNew()
	if err != nil {
		return &resource{err: fmt.Sprintf("%s: %v", a.GetTypeUrl(), err)}
	}
	r := &resource{msg: m, name: nameOf(m)}
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			r.err = fmt.Sprintf("%s %s: %v", a.GetTypeUrl(), r.name, err)
			return r
		}
	}
	switch m := m.(type) {
	case *clusterv3.Cluster:
		if m.GetType() == clusterv3.Cluster_EDS {
			r.eds = edsName(m)
		}
		r.sds = transportSocketSecrets(m.GetTransportSocket(), false)
		for _, tm := range m.GetTransportSocketMatches() {
			r.sds = append(r.sds, transportSocketSecrets(tm.GetTransportSocket(), false)...)
		}
	case *listenerv3.Listener:
		r.rds, r.clusters = listenerRoutes(m)
		chains := m.GetFilterChains()
		if m.GetDefaultFilterChain() != nil {
			chains = append(chains[:len(chains):len(chains)], m.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			r.sds = append(r.sds, transportSocketSecrets(fc.GetTransportSocket(), true)...)
		}
	case *routev3.RouteConfiguration:
		r.clusters = routeClusters(m)
	}
	return r
}

// transportSocketSecrets lists the SDS secrets a TLS transport socket
// fetches (upstream for clusters, downstream for listeners).
func transportSocketSecrets(ts *corev3.TransportSocket, downstream bool) []string {
	tc := ts.GetTypedConfig()
	if tc == nil {
		return nil
	}
	var common *tlsv3.CommonTlsContext
	if downstream {
		d := &tlsv3.DownstreamTlsContext{}
		if tc.UnmarshalTo(d) != nil {
			return nil
		}
		common = d.GetCommonTlsContext()
	} else {
		u := &tlsv3.UpstreamTlsContext{}
		if tc.UnmarshalTo(u) != nil {
			return nil
		}
		common = u.GetCommonTlsContext()
	}
	var out []string
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		out = append(out, s.GetName())
	}
	if s := common.GetValidationContextSdsSecretConfig(); s != nil {
		out = append(out, s.GetName())
	}
	if s := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil {
		out = append(out, s.GetName())
	}
	return out
}

func edsName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// listenerRoutes lists the route configurations a listener's HTTP
// connection managers fetch over RDS, and the clusters their inline route
// configurations send to.
func listenerRoutes(l *listenerv3.Listener) (rds, clusters []string) {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
				continue
			}
			if hcm.GetRds() != nil {
				rds = append(rds, hcm.GetRds().GetRouteConfigName())
			}
			if rc := hcm.GetRouteConfig(); rc != nil {
				clusters = append(clusters, routeClusters(rc)...)
			}
		}
	}
	return rds, clusters
}

// routeClusters lists the clusters a route configuration sends to.
func routeClusters(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
				out = append(out, w.GetName())
			}
		}
	}
	return out
}

func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case *clusterv3.Cluster:
		return r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case *listenerv3.Listener:
		return r.GetName()
	case *routev3.RouteConfiguration:
		return r.GetName()
	case *tlsv3.Secret:
		return r.GetName()
	}
	return fmt.Sprintf("%T", m)
}

// indexed is a response's resources indexed by name, and their names in
// the response's order. A shared one (from indexedAs) is read only.
type indexed struct {
	byName map[string]*resource
	names  []string
	shared bool

	edsOnce sync.Once
	eds     []string // the endpoint sets its clusters fetch, sorted (edsNames)
}

// getNames is the names, nil for nil.
func (x *indexed) getNames() []string {
	if x == nil {
		return nil
	}
	return x.names
}

// edsNames are the endpoint sets the clusters of x fetch, sorted and
// without repeats, worked out once.
func (x *indexed) edsNames() []string {
	x.edsOnce.Do(func() {
		x.eds = edsNamesOf(x.byName)
		sort.Strings(x.eds)
		x.eds = slices.Compact(x.eds)
	})
	return x.eds
}

// edsNamesOf lists the endpoint sets that EDS clusters fetch.
func edsNamesOf(clusters map[string]*resource) []string {
	var names []string
	for _, r := range clusters {
		if r.eds != "" {
			names = append(names, r.eds)
		}
	}
	return names
}

// Sharing indexes. 2000 simulated sidecars of a 1000-service mesh each
// receive the same 3000 clusters and 3000 endpoint sets; each indexing them
// by name, and working out the endpoint sets from the clusters, was a
// large part of the load generator's CPU and most of its memory. A large
// response whose resources are, one by one, the very ones (the same
// decoded contents in the same order) of a response indexed before gets
// that index, shared; an Envoy copies it before changing it (Envoy.own).

// minShared is the smallest response whose index is shared.
const minShared = 64

// maxIndexed bounds the indexes kept for sharing; the table starts over
// when full.
const maxIndexed = 256

type indexKey struct {
	hash uint64
	n    int
}

// indexedAs returns the shared index of a response with exactly these
// resources, or nil and the key to keep the response's index under
// (keepIndexed); ok is false for a response too small to share.
func (d *Decoder) indexedAs(decoded []*resource) (x *indexed, key indexKey, ok bool) {
	if d == nil || len(decoded) < minShared {
		return nil, indexKey{}, false
	}
	key = indexKey{hashResources(decoded), len(decoded)}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, c := range d.indexes[key] {
		if slices.Equal(c.decoded, decoded) {
			return c.x, key, true
		}
	}
	return nil, key, true
}

// keepIndexed offers x, the index of decoded, for sharing under key.
func (d *Decoder) keepIndexed(key indexKey, decoded []*resource, x *indexed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.indexes == nil || d.kept >= maxIndexed {
		d.indexes, d.kept = map[indexKey][]indexedResponse{}, 0
	}
	x.shared = true
	d.indexes[key] = append(d.indexes[key], indexedResponse{slices.Clone(decoded), x})
	d.kept++
}

// indexedResponse is a shared index and the resources it was made of.
type indexedResponse struct {
	decoded []*resource
	x       *indexed
}

// hashResources hashes the identities of decoded resources, in order.
func hashResources(decoded []*resource) uint64 {
	var h maphash.Hash
	h.SetSeed(resourceHashSeed)
	var b [8]byte
	for _, r := range decoded {
		binary.LittleEndian.PutUint64(b[:], uint64(uintptr(unsafe.Pointer(r))))
		h.Write(b[:])
	}
	return h.Sum64()
}

var resourceHashSeed = maphash.MakeSeed()
