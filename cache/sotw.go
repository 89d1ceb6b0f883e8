package cache

// State-of-the-world streams are answered here. The stream itself is
// minimesh's own (xds/sotw.go); this file decides what to send it.
//
// A stream remembers, per type, three small things (SotwState): the names
// it subscribes to, the set its last response came from, and the names
// that response answered. Names are interned, so the 2000 sidecars that
// all ask for the same 3000 endpoint sets share one copy of the list
// (names.go). go-control-plane's stream code kept, per stream and type, a
// map of every name it subscribes to and a map of every name it was sent:
// at 1000 services, more than half a megabyte per proxy.
//
// The protocol rules (Envoy's xDS protocol, "Resource updates" and
// "Grouping resources into responses"):
//   - a stream is answered when the version it reports differs from the
//     current one, or when it subscribes to a resource that exists and
//     that its last response did not answer; otherwise it waits;
//   - listeners and clusters are sent whole: a response lists every
//     resource the stream subscribes to, and the proxy removes any it
//     does not list;
//   - endpoint sets, route configurations and secrets are sent only when
//     they changed: the proxy keeps what a response does not list (it
//     drops them when no listener or cluster uses them any more). So an
//     endpoint change sends one ClusterLoadAssignment, not 3000. The
//     difference between two sets is worked out once for every stream
//     making the same move (setdiff.go);
//   - after a NACK the next response is whole again, because the proxy
//     kept its older configuration;
//   - the rejected version itself is not resent (xds/sotw.go reports the
//     rejected version as the stream's), so a NACK does not start a loop.
//
// Most proxies get the very same set, so each set keeps its resources ready
// to send (anypb.Any wrappers around the bytes marshalled once, wire.go)
// and, once a second stream is sent it whole, encoded as a response's
// resource list, shared by every response that sends it whole.

import (
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sendWhole are the types whose responses list every subscribed resource.
var sendWhole = map[string]bool{resourcev3.ListenerType: true, resourcev3.ClusterType: true}

// SotwState is what one state-of-the-world stream asked for and was sent,
// of one type. The zero value has asked for nothing. The stream owns it;
// a watch works on a copy.
type SotwState struct {
	asked    bool
	legacy   bool   // the first request named nothing: every resource, until one names some
	wildcard bool   // every resource of the type
	names    *Names // the names subscribed to, unless wildcard

	sent         bool     // a response was sent
	held         *typeSet // the set the last response came from
	heldWildcard bool     // the last response answered a wildcard subscription...
	heldNames    *Names   // ...or these names
	whole        bool     // the next response lists every subscribed resource (after a NACK)
	owed         *Names   // to send even if unchanged (Owe)
}

// Subscribe records the names of a request. The first request naming
// nothing subscribes to everything ("legacy wildcard"), until a request
// names something; "*" subscribes to everything explicitly.
func (st *SotwState) Subscribe(names []string) {
	first := !st.asked
	st.asked = true
	if len(names) == 0 && (first || st.legacy) {
		st.legacy, st.wildcard, st.names = true, true, nil
		return
	}
	st.legacy, st.wildcard = false, false
	for _, n := range names {
		if n == "*" {
			st.wildcard = true
		}
	}
	st.names = InternNames(names)
	st.forgetUnsubscribed()
}

// forgetUnsubscribed makes the names the stream no longer subscribes to
// count as not answered, so that subscribing to one again gets it sent
// again (a gRPC client drops a cluster it stops using, and asks for it
// anew when a route uses it again).
func (st *SotwState) forgetUnsubscribed() {
	switch {
	case !st.sent || st.wildcard || (!st.heldWildcard && st.heldNames == st.names):
		return
	case st.heldWildcard:
		st.heldWildcard, st.heldNames = false, st.names
		return
	}
	kept := make([]string, 0, len(st.heldNames.list))
	for _, name := range st.heldNames.list {
		if st.names.Has(name) {
			kept = append(kept, name)
		}
	}
	if len(kept) < len(st.heldNames.list) { // the list may repeat a name
		st.heldNames = InternNames(kept)
	}
}

// Sent records that r was sent. For clusters, it returns the endpoint
// sets of the clusters r changed: Envoy warms a changed cluster anew, and
// the cluster finishes warming only when it is sent its endpoints, even
// unchanged (the xDS protocol's note on cluster warming). The stream owes
// them to its endpoint subscription (Owe).
func (st *SotwState) Sent(r *SotwResponse) (refresh []string) {
	if r.TypeURL == resourcev3.ClusterType && st.held != nil && r.set != nil && st.held != r.set {
		for _, name := range r.set.diffFrom(st.held).changed {
			if _, existed := st.held.versions[name]; !existed {
				continue // a new cluster: its endpoints are a new subscription
			}
			if c, ok := r.set.resources[name].(*clusterv3.Cluster); ok && c.GetType() == clusterv3.Cluster_EDS {
				refresh = append(refresh, edsServiceName(c))
			}
		}
	}
	st.sent = true
	st.held, st.heldWildcard, st.heldNames = r.set, r.wildcard, r.names
	st.whole = false
	if st.owed == r.owed {
		st.owed = nil
	}
	return refresh
}

// Owe makes the stream's next response send names even if they did not
// change, and reports whether the stream subscribes to any of them (then
// its watch must be opened again to be answered at once).
func (st *SotwState) Owe(names []string) bool {
	if st.owed != nil {
		names = append(slices.Clone(st.owed.list), names...)
		slices.Sort(names)
		names = slices.Compact(names)
	}
	st.owed = InternNames(names) // the same list for every proxy making the same move
	for _, name := range st.owed.list {
		if st.subscribes(name) {
			return true
		}
	}
	return false
}

// Rejected records a NACK: the proxy kept the configuration it had before
// the last response, so the next response must not assume it holds that
// response's resources.
func (st *SotwState) Rejected() { st.whole = true }

// subscribedIn is how many resources the stream subscribes to, at most
// the size of cur.
func (st *SotwState) subscribedIn(cur *typeSet) int {
	if st.wildcard {
		return len(cur.order)
	}
	return min(st.names.Len(), len(cur.order))
}

// subscribes reports whether the stream subscribes to name.
func (st *SotwState) subscribes(name string) bool {
	return st.wildcard || st.names.Has(name)
}

// answered reports whether the last response answered a subscription to name.
func (st *SotwState) answered(name string) bool {
	return st.sent && (st.heldWildcard || st.heldNames.Has(name))
}

// answer is what to send a stream that reports version and is in state st,
// given the current set of its type; nil to wait for a change.
func (st *SotwState) answer(typeURL, version string, cur *typeSet) *SotwResponse {
	newNames := false
	if cur != nil && (!st.sent || st.wildcard != st.heldWildcard || st.names != st.heldNames) {
		for _, name := range cur.order {
			if st.subscribes(name) && !st.answered(name) {
				newNames = true
				break
			}
		}
	}
	var owed []string // owed names the stream subscribes to, in cur
	for _, name := range st.owed.List() {
		if _, ok := cur.getResource(name); ok && st.subscribes(name) {
			owed = append(owed, name)
		}
	}
	if version == cur.getVersion() && !newNames && len(owed) == 0 {
		return nil
	}
	r := &SotwResponse{TypeURL: typeURL, Version: cur.getVersion(), set: cur, wildcard: st.wildcard, names: st.names, owed: st.owed}
	if cur == nil {
		return r
	}
	if sendWhole[typeURL] || st.whole || !st.sent || st.held == nil || 2*len(owed) >= st.subscribedIn(cur) {
		// (Owing most of it, as after a mesh-wide mTLS change: the whole
		// set, which is encoded once for every stream.)
		r.whole(st, cur)
		return r
	}
	// Only what changed since the set the stream holds, what it
	// subscribes to now that its last response did not answer, and what
	// it is owed.
	var changed []string
	if st.held != cur {
		changed = cur.diffFrom(st.held).changed
		for _, name := range changed {
			if st.subscribes(name) && st.answered(name) {
				r.resources = append(r.resources, cur.wire[name].GetResource())
			}
		}
	}
	if newNames {
		for _, name := range cur.order {
			if st.subscribes(name) && !st.answered(name) {
				r.resources = append(r.resources, cur.wire[name].GetResource())
			}
		}
	}
	if len(owed) > 0 {
		inChanged := make(map[string]bool, len(changed))
		for _, name := range changed {
			inChanged[name] = true
		}
		for _, name := range owed {
			if st.answered(name) && !inChanged[name] { // not sent above
				r.resources = append(r.resources, cur.wire[name].GetResource())
			}
		}
	}
	return r
}

// getResource returns a resource of the set by name.
func (s *typeSet) getResource(name string) (types.Resource, bool) {
	if s == nil {
		return nil, false
	}
	r, ok := s.resources[name]
	return r, ok
}

// edsServiceName is the name of the endpoint set an EDS cluster asks for.
func edsServiceName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// whole fills r with every resource of cur that st subscribes to.
func (r *SotwResponse) whole(st *SotwState, cur *typeSet) {
	all := cur.sendable()
	if st.wildcard || cur.coveredBy(st.names) {
		r.resources, r.encoded = all.anys, all.encoded()
		return
	}
	for i, name := range cur.order {
		if st.names.Has(name) {
			r.resources = append(r.resources, all.anys[i])
		}
	}
}

// SotwResponse is one state-of-the-world response.
type SotwResponse struct {
	TypeURL, Version string

	resources []*anypb.Any // shared with other responses: read only
	encoded   []byte       // resources encoded, when shared by several responses (wire.go)

	set      *typeSet // what a stream holds once it is sent (SotwState.Sent)
	wildcard bool
	names    *Names
	owed     *Names // the names owed when it was made: sent now
}

// Message is the response to send, without its nonce. Each call returns a
// new message, so the caller may set the nonce.
func (r *SotwResponse) Message() *discoveryv3.DiscoveryResponse {
	out := &discoveryv3.DiscoveryResponse{VersionInfo: r.Version, TypeUrl: r.TypeURL}
	if r.encoded != nil {
		return withEncodedResources(out, r.encoded)
	}
	out.Resources = r.resources
	return out
}

// WatchSotw hands deliver the response a stream in state st, reporting
// version, is to get for typeURL: at once if there is one, otherwise when
// the node's configuration changes. The stream cancels the watch before it
// changes st or opens another for the type. A watch delivers at most one
// response; deliver is called with the node's lock held, so it must not
// block or call the cache.
func (c *Cache) WatchSotw(nodeID, typeURL, version string, st SotwState, deliver func(*SotwResponse)) (cancel func()) {
	n := c.node(nodeID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.snap.Load(); s != nil {
		if r := st.answer(typeURL, version, s.sets[typeURL]); r != nil {
			deliver(r)
			return func() {}
		}
	}
	if n.watches == nil {
		n.watches = map[int64]*sotwWatch{}
	}
	n.nextWatch++
	id := n.nextWatch
	n.watches[id] = &sotwWatch{typeURL: typeURL, version: version, state: st, deliver: deliver}
	return func() {
		n.mu.Lock()
		delete(n.watches, id)
		n.mu.Unlock()
	}
}

// sotwWatch is a stream waiting for a change of one type.
type sotwWatch struct {
	typeURL, version string
	state            SotwState
	deliver          func(*SotwResponse)
}

// respondSotW answers the node's open watches that s gives something to
// send, in the order of Types (clusters first). The caller holds n.mu.
func (n *node) respondSotW(s *Snapshot) {
	for _, t := range Types {
		for id, w := range n.watches {
			if w.typeURL != t {
				continue
			}
			if r := w.state.answer(t, w.version, s.sets[t]); r != nil {
				w.deliver(r)
				delete(n.watches, id)
			}
		}
	}
}

// sendable is a set ready to send whole: each resource's bytes wrapped in
// an Any, in the set's order.
type sendable struct {
	anys     []*anypb.Any
	encoding onSecondUse // anys as a response's field 2 (wire.go)
}

// sendable returns the set ready to send, built once.
func (s *typeSet) sendable() *sendable {
	s.sendOnce.Do(func() {
		out := &sendable{anys: make([]*anypb.Any, 0, len(s.order))}
		for _, name := range s.order {
			out.anys = append(out.anys, s.wire[name].GetResource())
		}
		s.send = out
	})
	return s.send
}

// encoded returns the set encoded as a response's resources, from the
// second time it is sent whole (onSecondUse).
func (s *sendable) encoded() []byte {
	return s.encoding.get(func() []byte { return encodeResources(s.anys) })
}

// coveredBy reports whether names include every resource of the set (an
// Envoy sidecar's endpoints: it asks for every EDS cluster by name). The
// last subscription that does is remembered, as most streams share it.
func (s *typeSet) coveredBy(names *Names) bool {
	if names == nil || names.Len() < len(s.order) {
		return false
	}
	s.mu.Lock()
	last := s.coveredLast
	s.mu.Unlock()
	if last == names {
		return true
	}
	for _, name := range s.order {
		if !names.Has(name) {
			return false
		}
	}
	s.mu.Lock()
	s.coveredLast = names
	s.mu.Unlock()
	return true
}

// getVersion is the version of a set, "" for none.
func (s *typeSet) getVersion() string {
	if s == nil {
		return ""
	}
	return s.version
}
