package cache

// Delta streams are answered here. The stream itself is minimesh's own
// (xds/delta.go); this file keeps what each stream subscribes to and holds,
// and decides what to send it.
//
// A comparison of every resource of the type with what the stream was
// sent, building a map of every name, for every watch of the node on every
// change and on every ACK (as go-control-plane's snapshot cache answers),
// cost 7.3 s of CPU for one endpoint change at 2000 proxies holding 3000
// endpoint sets each. And go-control-plane's delta stream kept, per stream
// and type, a map of every name subscribed to: 217 MB at 2000 proxies.
//
// Here a stream remembers what it holds as a shared set plus a few
// exceptions: "every resource of set S, at S's versions, except these
// names". A stream still holding the proxy's current set costs nothing on
// an ACK; a stream moving from S to S' looks only at the names that differ
// between them, and that difference is worked out once for every stream
// making the same move (setdiff.go). The names a stream subscribes to are
// interned (names.go): every sidecar asking for the same endpoint sets
// shares one list. The resources sent are the shared wire forms of
// wire.go; a response with the whole set shares one slice.
//
// The protocol rules (Envoy's xDS protocol, "Incremental xDS"):
//   - a stream's first request of a type that names nothing subscribes to
//     every resource ("legacy wildcard") until a request names some; "*"
//     subscribes to every resource explicitly, and unsubscribing "*" ends
//     that;
//   - a wildcard subscription (CDS, LDS) is sent every resource it does not
//     hold at the current version, and the removal of every name it holds
//     that is gone; its first request is answered even when empty, so that
//     Envoy finishes initializing;
//   - a named subscription (EDS, RDS, SDS) is sent the resources it names
//     that exist and it does not hold at the current version, and the
//     removal of the names it holds that are gone; it holds only what it
//     names;
//   - initial_resource_versions of a reconnecting stream count as held, so
//     a resource is not sent again at a version the proxy already has;
//   - an unsubscribed name stops being held (on a wildcard stream, a name
//     that was explicitly subscribed is held at no version, so that it is
//     sent again or removed);
//   - what was sent counts as held whether it was ACKed or NACKed: a NACK
//     gets nothing until the set changes, so a rejected version is not
//     resent in a loop.

import (
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// notHeld marks, among a stream's exceptions, a name of its base set that
// it does not hold. Resource versions are hex.
const notHeld = "\x00"

// DeltaState is what one delta stream subscribes to and holds of one
// type, and its open watch. The stream owns it; the cache reads and
// changes it only under the node's lock (WatchDelta, and the publishing
// that answers an open watch).
type DeltaState struct {
	typeURL string
	started bool // the stream's first request of the type was taken in

	// The subscription.
	wildcard bool   // every resource of the type
	names    *Names // the names subscribed to explicitly (interned)

	// The stream holds every resource of base at base's version, except
	// for the names in over: held at that version, or notHeld. A stream
	// with no base holds exactly what over says (a named subscription that
	// asks for few of the set's resources, or a stream before its first
	// answer).
	base *typeSet
	over map[string]string

	// target is the set the stream was last brought up to date with, and
	// heldWildcard whether it subscribed by wildcard then.
	target       *typeSet
	heldWildcard bool

	watch *deltaWatch // open, waiting for a change; nil if none
}

// NewDeltaState returns the state of a stream that has not yet asked for
// typeURL.
func NewDeltaState(typeURL string) *DeltaState { return &DeltaState{typeURL: typeURL} }

// deltaWatch is a delta stream waiting for a change of its type.
type deltaWatch struct {
	mustAnswer bool // the stream's first wildcard request: answered even if empty
	deliver    func(*DeltaResponse)
}

// WatchDelta takes in a request of the stream whose state is st, and hands
// deliver the response to it at once if there is something to send, or else
// when the node's configuration changes. The stream cancels the watch before
// it makes its next request. A watch delivers at most one response; deliver
// is called with the node's lock held, so it must not block or call the
// cache.
func (c *Cache) WatchDelta(nodeID string, st *DeltaState, req *discoveryv3.DeltaDiscoveryRequest, deliver func(*DeltaResponse)) (cancel func()) {
	n := c.node(nodeID)
	n.mu.Lock()
	defer n.mu.Unlock()
	first := !st.started
	st.take(req)
	w := &deltaWatch{mustAnswer: first && st.wildcard, deliver: deliver}
	if s := n.snap.Load(); s != nil {
		if r := st.update(s.sets[st.typeURL], w.mustAnswer, requestNames(req)); r != nil {
			deliver(r)
			return func() {}
		}
	}
	st.watch = w
	if n.deltaOpen == nil {
		n.deltaOpen = map[*DeltaState]struct{}{}
	}
	n.deltaOpen[st] = struct{}{}
	return func() { n.cancelDelta(st, w) }
}

// cancelDelta closes a stream's watch w, if still open.
func (n *node) cancelDelta(st *DeltaState, w *deltaWatch) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st.watch == w {
		st.watch = nil
		delete(n.deltaOpen, st)
	}
}

// respondDelta answers the node's open delta watches that s gives
// something to send, in the order of Types. The caller holds n.mu.
func (n *node) respondDelta(s *Snapshot) {
	for _, t := range Types {
		for st := range n.deltaOpen {
			w := st.watch
			if st.typeURL != t || w == nil {
				continue
			}
			if r := st.update(s.sets[t], w.mustAnswer, nil); r != nil {
				w.deliver(r)
				st.watch = nil
				delete(n.deltaOpen, st)
			}
		}
	}
}

// take takes in a request's subscriptions and unsubscriptions, and on the
// stream's first request of the type, the versions it already holds.
func (st *DeltaState) take(req *discoveryv3.DeltaDiscoveryRequest) {
	subscribe, unsubscribe := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	if !st.started {
		st.started = true
		// Legacy wildcard. A later request naming resources keeps the
		// wildcard (Envoy then also sends "*"); only unsubscribing "*"
		// ends it.
		st.wildcard = len(subscribe) == 0
		for name, version := range req.GetInitialResourceVersions() {
			if name != "*" {
				st.over = setOver(st.over, name, version)
			}
		}
	}
	if len(subscribe) == 0 && len(unsubscribe) == 0 {
		return
	}
	// The subscribed names as a new list, only if they change: Envoy's
	// first EDS request names every cluster, and every sidecar's list is
	// then the same shared one.
	var adds []string
	for _, name := range subscribe {
		if name == "*" {
			st.wildcard = true
		} else if !st.names.Has(name) {
			adds = append(adds, name)
		}
	}
	var drops map[string]bool
	for _, name := range unsubscribe {
		if name == "*" {
			st.wildcard = false
			continue
		}
		if st.names.Has(name) && st.wildcard {
			st.hold(name, "") // still wanted through the wildcard: sent again
		} else {
			st.drop(name)
		}
		if st.names.Has(name) {
			if drops == nil {
				drops = map[string]bool{}
			}
			drops[name] = true
		}
	}
	if len(adds) == 0 && len(drops) == 0 {
		return
	}
	if st.names.Len() == 0 && len(drops) == 0 && len(adds) == len(subscribe) {
		st.names = InternNames(subscribe) // interned already if it came off the wire (xds/codec.go)
		return
	}
	list := make([]string, 0, st.names.Len()+len(adds))
	for _, name := range st.names.List() {
		if !drops[name] {
			list = append(list, name)
		}
	}
	st.names = InternNames(append(list, adds...))
}

// subscribes reports whether the stream subscribes to name explicitly.
func (st *DeltaState) subscribes(name string) bool { return st.names.Has(name) }

// held returns the version of a resource that the stream holds.
func (st *DeltaState) held(name string) (string, bool) {
	if v, ok := st.over[name]; ok {
		return v, v != notHeld
	}
	if st.base != nil {
		v, ok := st.base.versions[name]
		return v, ok
	}
	return "", false
}

// hold records that the stream holds a version of a resource.
func (st *DeltaState) hold(name, version string) {
	if st.base != nil && st.base.versions[name] == version && version != "" {
		delete(st.over, name)
		return
	}
	if st.over == nil {
		st.over = map[string]string{}
	}
	st.over[name] = version
}

// drop records that the stream does not hold a resource.
func (st *DeltaState) drop(name string) {
	if st.base != nil {
		if _, ok := st.base.versions[name]; ok {
			if st.over == nil {
				st.over = map[string]string{}
			}
			st.over[name] = notHeld
			return
		}
	}
	delete(st.over, name)
}

// requestNames are the names a request subscribes to or unsubscribes
// from: they are looked at even if the set did not change.
func requestNames(req *discoveryv3.DeltaDiscoveryRequest) []string {
	sub, unsub := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	if len(unsub) == 0 {
		return sub
	}
	return append(slices.Clip(sub), unsub...)
}

// update brings the stream up to date with set t and returns the response
// to send, or nil if there is nothing to send. mustAnswer asks for a
// response even if empty (Envoy waits for the answer to its first wildcard
// request to finish initializing); asked are the names the request being
// answered subscribed to or unsubscribed from.
func (st *DeltaState) update(t *typeSet, mustAnswer bool, asked []string) *DeltaResponse {
	if t == nil {
		t = emptySet(st.typeURL)
	}
	wildcard := st.wildcard
	if st.target != nil && st.target != t && st.target.version == t.version {
		st.rebase(t) // the same resources, in a set built anew
	}
	if st.target == t && st.heldWildcard == wildcard && len(asked) == 0 {
		if mustAnswer {
			return st.response(t, nil, nil)
		}
		return nil
	}
	if st.target == nil && len(st.over) == 0 && len(t.order) > 0 && (wildcard || subscribesAll(t, st.names)) {
		// A new stream that holds nothing and wants everything (Envoy's
		// first CDS, LDS and EDS requests): the whole set, shared.
		st.base, st.over, st.target, st.heldWildcard = t, nil, t, wildcard
		return st.response(t, t.order, nil)
	}
	var send, removed, unwanted []string
	all := st.eachNameToCompare(t, wildcard, asked, func(name string) {
		version, inSet := t.versions[name]
		wanted := wildcard || st.subscribes(name)
		hv, held := st.held(name)
		switch {
		case inSet && !wanted:
			unwanted = append(unwanted, name)
		case inSet && (!held || hv != version):
			send = append(send, name)
		case !inSet && wanted && held:
			removed = append(removed, name)
		}
	})
	st.settle(t, wildcard, unwanted, all)
	if len(send) == 0 && len(removed) == 0 && !mustAnswer {
		return nil
	}
	return st.response(t, send, removed)
}

// eachNameToCompare calls visit once for every name whose state may differ
// between what the stream holds and what it should hold of t: the names
// that differ between its base set and t, its exceptions, and the names
// its request asked about. A stream without a base set looks at the names
// it subscribes to; a new stream, or one whose subscription changed
// between wildcard and named, at every name (and all is then true).
func (st *DeltaState) eachNameToCompare(t *typeSet, wildcard bool, asked []string, visit func(string)) (all bool) {
	subscribedNames := st.names.members()
	switch {
	case st.target != nil && st.heldWildcard == wildcard && st.base != nil:
		seen := make(map[string]struct{}, len(st.over)+len(asked))
		once := func(n string) {
			if _, dup := seen[n]; !dup && n != "*" {
				seen[n] = struct{}{}
				visit(n)
			}
		}
		if st.base != t {
			d := t.diffFrom(st.base)
			for _, n := range d.changed {
				once(n)
			}
			for _, n := range d.removed {
				once(n)
			}
		}
		for n := range st.over {
			once(n)
		}
		for _, n := range asked {
			once(n)
		}
		return false
	case !wildcard && !st.heldWildcard: // no base: holds only what over says
		for n := range subscribedNames {
			visit(n)
		}
		for n := range st.over {
			if _, ok := subscribedNames[n]; !ok {
				visit(n)
			}
		}
		for _, n := range asked {
			_, inSub := subscribedNames[n]
			_, inOver := st.over[n]
			if !inSub && !inOver && n != "*" {
				visit(n)
			}
		}
		return false
	}
	in := func(s *typeSet, n string) bool {
		if s == nil {
			return false
		}
		_, ok := s.versions[n]
		return ok
	}
	for _, n := range t.order {
		visit(n)
	}
	if st.base != nil {
		for _, n := range st.base.order {
			if !in(t, n) {
				visit(n)
			}
		}
	}
	for n := range st.over {
		if !in(t, n) && !in(st.base, n) {
			visit(n)
		}
	}
	for n := range subscribedNames {
		if _, inOver := st.over[n]; !inOver && !in(t, n) && !in(st.base, n) {
			visit(n)
		}
	}
	return true
}

// settle records that the stream now holds what it wants of t: with a
// wildcard, all of t; otherwise the names it subscribes to that t has.
// unwanted are the names of t compared that it does not subscribe to.
//
// A named stream that wants most of t keeps t as its base with the names
// it does not want as exceptions; one that wants few of them lists what
// it holds instead, so that it costs memory in proportion to what it asks.
func (st *DeltaState) settle(t *typeSet, wildcard bool, unwanted []string, all bool) {
	st.target, st.heldWildcard = t, wildcard
	if wildcard {
		st.base, st.over = t, nil
		return
	}
	if st.base != nil || all {
		st.base, st.over = t, nil
		for _, n := range unwanted {
			st.over = setOver(st.over, n, notHeld)
		}
		if len(st.over) <= len(t.order)/2 {
			return
		}
	}
	wanted := 0
	for n := range st.names.members() {
		if _, ok := t.versions[n]; ok {
			wanted++
		}
	}
	st.base, st.over = nil, nil
	if wanted > len(t.order)*3/4 {
		// Wants most of t after all: share it.
		st.base = t
		for _, n := range t.order {
			if !st.subscribes(n) {
				st.over = setOver(st.over, n, notHeld)
			}
		}
		return
	}
	for n := range st.names.members() {
		if v, ok := t.versions[n]; ok {
			st.over = setOver(st.over, n, v)
		}
	}
}

// rebase moves the stream onto a set with the same resources as its
// target, so that the older set can be freed.
func (st *DeltaState) rebase(t *typeSet) {
	if st.base != nil {
		st.base = t
	}
	st.target = t
}

func setOver(m map[string]string, name, version string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[name] = version
	return m
}

// emptySet stands for a type the proxy has nothing of.
func emptySet(typeURL string) *typeSet {
	return &typeSet{typeURL: typeURL, version: "", versions: map[string]string{}, resources: nil}
}

// response is a delta response sending the named resources of t and
// removing others. Sending the whole set shares its slice.
func (st *DeltaState) response(t *typeSet, send, removed []string) *DeltaResponse {
	r := &DeltaResponse{TypeURL: st.typeURL, Version: t.version, removed: removed}
	if len(send) == len(t.order) && len(send) > 0 { // send has no duplicates
		r.resources, r.encoded = t.deltaResources()
		return r
	}
	slices.Sort(send)
	slices.Sort(r.removed)
	r.resources = make([]*discoveryv3.Resource, len(send))
	for i, name := range send {
		r.resources[i] = t.wire[name]
	}
	return r
}

// deltaResources is every resource of the set ready to send, in order,
// built once, and encoded as a response's field 2 from its second use
// (wire.go).
func (s *typeSet) deltaResources() ([]*discoveryv3.Resource, []byte) {
	s.deltaOnce.Do(func() {
		s.deltaAll = make([]*discoveryv3.Resource, len(s.order))
		for i, name := range s.order {
			s.deltaAll[i] = s.wire[name]
		}
	})
	return s.deltaAll, s.deltaEncoding.get(func() []byte { return encodeResources(s.deltaAll) })
}

// DeltaResponse is one delta response.
type DeltaResponse struct {
	TypeURL, Version string

	resources []*discoveryv3.Resource // shared with other responses: read only
	encoded   []byte                  // resources encoded, when they are the whole set (wire.go)
	removed   []string
}

// Message is the response to send, without its nonce. Each call returns a
// new message, so the caller may set the nonce.
func (r *DeltaResponse) Message() *discoveryv3.DeltaDiscoveryResponse {
	out := &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: r.Version,
		RemovedResources:  r.removed,
		TypeUrl:           r.TypeURL,
	}
	if r.encoded != nil {
		return withEncodedResources(out, r.encoded)
	}
	out.Resources = r.resources
	return out
}

// subscribesAll reports whether a named subscription covers the whole set
// (an Envoy sidecar's endpoints: it asks for every EDS cluster by name).
func subscribesAll(set *typeSet, names *Names) bool {
	if names.Len() < len(set.order) {
		return false
	}
	for _, name := range set.order {
		if !names.Has(name) {
			return false
		}
	}
	return true
}
