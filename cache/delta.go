package cache

// Delta watches are answered here rather than by go-control-plane's
// snapshot cache. Its answer compares every resource of the type with what
// the stream was sent, building a map of every name, for every watch of
// the node on every change and on every ACK: at 2000 proxies holding 3000
// endpoint sets each, one endpoint change cost 7.3 s of CPU.
//
// Here a stream remembers what it holds as a shared set plus a few
// exceptions: "every resource of set S, at S's versions, except these
// names". A stream still holding the proxy's current set costs nothing on
// an ACK; a stream moving from S to S' looks only at the names that differ
// between them, and that difference is worked out once for every stream
// making the same move (setdiff.go). The resources sent are the shared
// wire forms of wire.go; a response with the whole set shares one slice.
//
// The protocol is go-control-plane's (pkg/cache/v3/delta.go), which its
// delta server (pkg/server/delta/v3) drives:
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
//     sent again or removed, as go-control-plane does);
//   - what was sent counts as held whether it was ACKed or NACKed: a NACK
//     gets nothing until the set changes, so a rejected version is not
//     resent in a loop.
//
// Finding a stream's state again. go-control-plane's server keeps, per
// stream and type, the map that the last response returned as
// "GetReturnedResources", and passes it back in the subscription of the next
// request. Ours carries a single entry, the key of the stream's state in the
// node's registry, instead of a version for every name. The server also
// keeps the watch's cancel function until the next request replaces it, and
// that closure holds the state: so the state lives exactly as long as the
// stream, and the registry holds it weakly.

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"weak"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// stateKey is the one name in the map a stream's state is found by: a
	// NUL byte starts no resource name.
	stateKey = "\x00minimesh-delta-stream"
	// notHeld marks, among a stream's exceptions, a name of its base set
	// that it does not hold. Resource versions are hex.
	notHeld = "\x00"
)

// deltaStream is what one delta stream holds of one type, and its open
// watch.
type deltaStream struct {
	key     string
	typeURL string
	// returned is the map go-control-plane keeps for the stream: only
	// stateKey. go-control-plane writes unsubscriptions into it.
	returned map[string]string

	// The stream holds every resource of base at base's version, except
	// for the names in over: held at that version, or notHeld. A stream
	// with no base holds exactly what over says (a named subscription that
	// asks for few of the set's resources, or a stream before its first
	// answer).
	base *typeSet
	over map[string]string

	// target is the set the stream was last brought up to date with, and
	// wildcard whether it subscribed by wildcard then.
	target   *typeSet
	wildcard bool

	watch *deltaWatch // open, waiting for a change; nil if none
}

// deltaWatch is a delta stream waiting for a change of its type.
type deltaWatch struct {
	req *cachev3.DeltaRequest
	sub cachev3.Subscription
	out chan cachev3.DeltaResponse
}

// errStateLost closes a stream whose state the cache no longer has: only
// a reconnect (with initial_resource_versions) tells again what it holds.
var errStateLost = status.Error(codes.Unavailable, "minimesh lost track of this delta stream; reconnect")

// CreateDeltaWatch answers a delta request at once if there is something
// to send, and otherwise waits for a change.
func (x xdsCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	n := x.c.node(req.GetNode().GetId())
	n.mu.Lock()
	defer n.mu.Unlock()
	st, err := x.c.deltaStreamOf(n, req, sub)
	if err != nil {
		return nil, err
	}
	st.apply(req)
	if s := n.snap.Load(); s != nil {
		if r := st.update(s.sets[req.GetTypeUrl()], req, sub, requestNames(req)); r != nil {
			out <- r
			return func() { n.cancelDelta(st, nil) }, nil
		}
	}
	w := &deltaWatch{req: req, sub: sub, out: out}
	st.watch = w
	if n.deltaOpen == nil {
		n.deltaOpen = map[*deltaStream]struct{}{}
	}
	n.deltaOpen[st] = struct{}{}
	return func() { n.cancelDelta(st, w) }, nil
}

// cancelDelta closes a stream's watch w, if still open. (It also keeps st
// alive as long as the server holds this function: see the top of the file.)
func (n *node) cancelDelta(st *deltaStream, w *deltaWatch) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w != nil && st.watch == w {
		st.watch = nil
		delete(n.deltaOpen, st)
	}
}

// respondDelta answers the node's open delta watches that s gives
// something to send, in the order of Types. The caller holds n.mu; every
// response channel has room for one response per type, so this never
// blocks.
func (n *node) respondDelta(s *Snapshot) {
	for _, t := range Types {
		for st := range n.deltaOpen {
			w := st.watch
			if st.typeURL != t || w == nil {
				continue
			}
			if r := st.update(s.sets[t], w.req, w.sub, nil); r != nil {
				w.out <- r
				st.watch = nil
				delete(n.deltaOpen, st)
			}
		}
	}
}

// deltaStreamOf finds the state of the stream a request comes on, or
// starts one for a stream's first request of a type.
func (c *Cache) deltaStreamOf(n *node, req *cachev3.DeltaRequest, sub cachev3.Subscription) (*deltaStream, error) {
	returned := sub.ReturnedResources()
	key, found := returned[stateKey]
	if _, forged := req.GetInitialResourceVersions()[stateKey]; found && !forged {
		st := n.deltas[key].Value()
		if st == nil || st.typeURL != req.GetTypeUrl() {
			return nil, errStateLost
		}
		return st, nil
	}
	// A stream's first request: what it holds is what go-control-plane
	// made of the request's initial_resource_versions.
	st := &deltaStream{
		key:      strconv.FormatUint(c.nextStream.Add(1), 10),
		typeURL:  req.GetTypeUrl(),
		over:     make(map[string]string, len(returned)),
		wildcard: sub.IsWildcard(),
	}
	for name, version := range returned {
		if name != stateKey {
			st.over[name] = version
		}
	}
	st.returned = map[string]string{stateKey: st.key}
	if n.deltas == nil {
		n.deltas = map[string]weak.Pointer[deltaStream]{}
	}
	n.deltas[st.key] = weak.Make(st)
	runtime.AddCleanup(st, n.forgetDelta, st.key)
	return st, nil
}

// forgetDelta drops the registry entry of a stream that has gone.
func (n *node) forgetDelta(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.deltas[key].Value() == nil {
		delete(n.deltas, key)
	}
}

// apply takes in a request's unsubscriptions. go-control-plane has
// already applied them to its subscription, and to the map it keeps for
// the stream: there it sets to "" the names that are still to be sent or
// removed, and deletes the others, which are no longer held.
func (st *deltaStream) apply(req *cachev3.DeltaRequest) {
	for _, name := range req.GetResourceNamesUnsubscribe() {
		if name == "*" {
			continue
		}
		if v, ok := st.returned[name]; ok && v == "" {
			st.hold(name, "")
		} else {
			st.drop(name)
		}
	}
	for name := range st.returned {
		if name != stateKey {
			delete(st.returned, name)
		}
	}
}

// held returns the version of a resource that the stream holds.
func (st *deltaStream) held(name string) (string, bool) {
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
func (st *deltaStream) hold(name, version string) {
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
func (st *deltaStream) drop(name string) {
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
func requestNames(req *cachev3.DeltaRequest) []string {
	sub, unsub := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	if len(unsub) == 0 {
		return sub
	}
	return append(slices.Clip(sub), unsub...)
}

// update brings the stream up to date with set t and returns the response
// to send, or nil if there is nothing to send. asked are the names the
// request being answered subscribed to or unsubscribed from.
func (st *deltaStream) update(t *typeSet, req *cachev3.DeltaRequest, sub cachev3.Subscription, asked []string) *deltaResponse {
	if t == nil {
		t = emptySet(req.GetTypeUrl())
	}
	wildcard := sub.IsWildcard()
	mustAnswer := wildcard && req.GetResponseNonce() == "" // go-control-plane: Envoy waits for it
	if st.target != nil && st.target != t && st.target.version == t.version {
		st.rebase(t) // the same resources, in a set built anew
	}
	if st.target == t && st.wildcard == wildcard && len(asked) == 0 {
		if mustAnswer {
			return st.response(req, t, nil, nil)
		}
		return nil
	}
	if st.target == nil && len(st.over) == 0 && len(t.order) > 0 && (wildcard || subscribesAll(t, sub)) {
		// A new stream that holds nothing and wants everything (Envoy's
		// first CDS, LDS and EDS requests): the whole set, shared.
		st.base, st.over, st.target, st.wildcard = t, nil, t, wildcard
		return st.response(req, t, t.order, nil)
	}
	var send, removed, unwanted []string
	all := st.eachNameToCompare(t, sub, wildcard, asked, func(name string) {
		version, inSet := t.versions[name]
		wanted := wildcard || subscribed(sub, name)
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
	st.settle(t, sub, wildcard, unwanted, all)
	if len(send) == 0 && len(removed) == 0 && !mustAnswer {
		return nil
	}
	return st.response(req, t, send, removed)
}

// eachNameToCompare calls visit once for every name whose state may differ
// between what the stream holds and what it should hold of t: the names
// that differ between its base set and t, its exceptions, and the names
// its request asked about. A stream without a base set looks at the names
// it subscribes to; a new stream, or one whose subscription changed
// between wildcard and named, at every name (and all is then true).
func (st *deltaStream) eachNameToCompare(t *typeSet, sub cachev3.Subscription, wildcard bool, asked []string, visit func(string)) (all bool) {
	subscribedNames := sub.SubscribedResources()
	switch {
	case st.target != nil && st.wildcard == wildcard && st.base != nil:
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
	case !wildcard && !st.wildcard: // no base: holds only what over says
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
func (st *deltaStream) settle(t *typeSet, sub cachev3.Subscription, wildcard bool, unwanted []string, all bool) {
	st.target, st.wildcard = t, wildcard
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
	for n := range sub.SubscribedResources() {
		if _, ok := t.versions[n]; ok {
			wanted++
		}
	}
	st.base, st.over = nil, nil
	if wanted > len(t.order)*3/4 {
		// Wants most of t after all: share it.
		st.base = t
		for _, n := range t.order {
			if !subscribed(sub, n) {
				st.over = setOver(st.over, n, notHeld)
			}
		}
		return
	}
	for n := range sub.SubscribedResources() {
		if v, ok := t.versions[n]; ok {
			st.over = setOver(st.over, n, v)
		}
	}
}

// rebase moves the stream onto a set with the same resources as its
// target, so that the older set can be freed.
func (st *deltaStream) rebase(t *typeSet) {
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

func subscribed(sub cachev3.Subscription, name string) bool {
	_, ok := sub.SubscribedResources()[name]
	return ok
}

// emptySet stands for a type the proxy has nothing of.
func emptySet(typeURL string) *typeSet {
	return &typeSet{typeURL: typeURL, version: "", versions: map[string]string{}, resources: nil}
}

// response is a delta response sending the named resources of t and
// removing others. Sending the whole set shares its slice.
func (st *deltaStream) response(req *cachev3.DeltaRequest, t *typeSet, send, removed []string) *deltaResponse {
	r := &deltaResponse{req: req, version: t.version, removed: removed, returned: st.returned}
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

// deltaResponse is one delta response.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	version   string
	resources []*discoveryv3.Resource // shared with other responses: read only
	encoded   []byte                  // resources encoded, when they are the whole set (wire.go)
	removed   []string
	returned  map[string]string // the stream's key (see the top of the file)
}

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	// A new message each time: the server sets its nonce.
	out := &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: r.version,
		RemovedResources:  r.removed,
		TypeUrl:           r.req.GetTypeUrl(),
	}
	if r.encoded != nil {
		return withEncodedResources(out, r.encoded), nil
	}
	out.Resources = r.resources
	return out, nil
}

func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                   { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                          { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string                { return r.returned }
func (r *deltaResponse) GetReturnedResources() map[string]string             { return r.returned }
func (r *deltaResponse) GetContext() context.Context                         { return context.Background() }

var _ cachev3.DeltaResponse = (*deltaResponse)(nil)

// subscribesAll reports whether a named subscription covers the whole set
// (an Envoy sidecar's endpoints: it asks for every EDS cluster by name).
func subscribesAll(set *typeSet, sub cachev3.Subscription) bool {
	subscribed := sub.SubscribedResources()
	if len(subscribed) < len(set.order) {
		return false
	}
	for _, name := range set.order {
		if _, ok := subscribed[name]; !ok {
			return false
		}
	}
	return true
}
