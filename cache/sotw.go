package cache

// State-of-the-world watches are answered here rather than by
// go-control-plane's snapshot cache. Its answer costs, for every response,
// a small object and two closures per resource and a marshal of each
// resource, then the whole list again in a map: at 1000 services, 6000 of
// each per proxy. Most proxies get the very same set, so each set keeps its
// resources ready to send (anypb.Any wrappers around the bytes marshalled
// once, wire.go) and a response is a slice shared by every proxy that gets
// the whole set. The protocol rules are go-control-plane's (simple.go):
// answer when the version differs from the request's, or when a subscribed
// resource exists that the stream has not been sent; otherwise wait for a
// version that differs. Delta watches are answered by delta.go.

import (
	"context"
	"fmt"
	"maps"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// xdsCache is the cachev3.Cache the xDS server answers from.
type xdsCache struct{ c *Cache }

// sotwWatch is a stream waiting for a new version of one type.
type sotwWatch struct {
	req *cachev3.Request
	sub cachev3.Subscription
	out chan cachev3.Response
}

// CreateWatch answers a state-of-the-world request at once if there is
// something to send, and otherwise waits for the next version.
func (x xdsCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	n := x.c.node(req.GetNode().GetId())
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.snap.Load(); s != nil {
		set := s.sets[req.GetTypeUrl()]
		if req.GetVersionInfo() != set.getVersion() || newlySubscribed(set, sub) {
			out <- newSotwResponse(req, sub, set)
			return func() {}, nil
		}
	}
	if n.watches == nil {
		n.watches = map[int64]*sotwWatch{}
	}
	n.nextWatch++
	id := n.nextWatch
	n.watches[id] = &sotwWatch{req: req, sub: sub, out: out}
	return func() {
		n.mu.Lock()
		delete(n.watches, id)
		n.mu.Unlock()
	}, nil
}

// Fetch answers a one-off request with the resources it names (all of the
// type if it names none), unless it already has the current version. The
// xDS server refuses fetches; this serves tools and tests.
func (x xdsCache) Fetch(_ context.Context, req *cachev3.Request) (cachev3.Response, error) {
	nodeID := req.GetNode().GetId()
	s := x.c.Get(nodeID)
	if s == nil {
		return nil, fmt.Errorf("fetch %s: no configuration for node %q", shortType(req.GetTypeUrl()), nodeID)
	}
	set := s.sets[req.GetTypeUrl()]
	if req.GetVersionInfo() == set.getVersion() {
		return nil, fmt.Errorf("fetch %s: node %q already has version %s", shortType(req.GetTypeUrl()), nodeID, set.getVersion())
	}
	sub := stream.NewSotwSubscription(req.GetResourceNames(), true)
	return newSotwResponse(req, sub, set), nil
}

// respondSotW answers the node's open watches whose type's version
// differs from what they have, in the order of Types (clusters first). The
// caller holds n.mu; every response channel has room for one response per
// type, so this never blocks.
func (n *node) respondSotW(s *Snapshot) {
	for _, t := range Types {
		for id, w := range n.watches {
			if w.req.GetTypeUrl() != t {
				continue
			}
			if set := s.sets[t]; w.req.GetVersionInfo() != set.getVersion() {
				w.out <- newSotwResponse(w.req, w.sub, set)
				delete(n.watches, id)
			}
		}
	}
}

// newlySubscribed reports whether the stream subscribes to a resource of
// set that it has not been sent.
func newlySubscribed(set *typeSet, sub cachev3.Subscription) bool {
	if set == nil {
		return false
	}
	returned := sub.ReturnedResources()
	if sub.IsWildcard() {
		for _, name := range set.order {
			if _, ok := returned[name]; !ok {
				return true
			}
		}
		return false
	}
	for name := range sub.SubscribedResources() {
		if _, ok := returned[name]; !ok {
			if _, ok := set.resources[name]; ok {
				return true
			}
		}
	}
	return false
}

// sotwResponse is one state-of-the-world response.
type sotwResponse struct {
	req       *cachev3.Request
	version   string
	resources []*anypb.Any      // shared with other responses: read only
	returned  map[string]string // the stream's own: go-control-plane edits it
	ctx       context.Context
}

// newSotwResponse answers req with set: every resource of it, or the ones
// the request names.
func newSotwResponse(req *cachev3.Request, sub cachev3.Subscription, set *typeSet) *sotwResponse {
	r := &sotwResponse{req: req, version: set.getVersion(), ctx: context.Background()}
	if set == nil {
		r.returned = map[string]string{}
		return r
	}
	all := set.sendable()
	if len(req.GetResourceNames()) == 0 || subscribesAll(set, sub) {
		r.resources = all.anys
		r.returned = maps.Clone(all.returned)
		return r
	}
	subscribed := sub.SubscribedResources()
	r.returned = make(map[string]string, len(subscribed))
	for i, name := range set.order {
		if _, ok := subscribed[name]; ok {
			r.resources = append(r.resources, all.anys[i])
			r.returned[name] = set.version
		}
	}
	return r
}

// subscribesAll reports whether a named subscription covers the whole set
// (an Envoy sidecar's endpoints: it asks for every EDS cluster by name).
func subscribesAll(set *typeSet, sub cachev3.Subscription) bool {
	if set == nil {
		return false
	}
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

func (r *sotwResponse) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	// A new message each time: the server sets its nonce.
	return &discoveryv3.DiscoveryResponse{VersionInfo: r.version, Resources: r.resources, TypeUrl: r.req.GetTypeUrl()}, nil
}

func (r *sotwResponse) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *sotwResponse) GetVersion() (string, error)               { return r.version, nil }
func (r *sotwResponse) GetResponseVersion() string                { return r.version }
func (r *sotwResponse) GetReturnedResources() map[string]string   { return r.returned }
func (r *sotwResponse) GetContext() context.Context               { return r.ctx }

// sendable is a set ready to send whole: each resource's bytes wrapped in
// an Any, in the set's order, and the names it returns with the set's
// version (go-control-plane's bookkeeping of what a stream was sent).
type sendable struct {
	anys     []*anypb.Any
	returned map[string]string
}

// sendable returns the set ready to send, built once.
func (s *typeSet) sendable() *sendable {
	s.sendOnce.Do(func() {
		out := &sendable{anys: make([]*anypb.Any, 0, len(s.order)), returned: make(map[string]string, len(s.order))}
		for _, name := range s.order {
			out.anys = append(out.anys, s.wire[name].GetResource())
			out.returned[name] = s.version
		}
		s.send = out
	})
	return s.send
}

// getVersion is the version of a set, "" for none.
func (s *typeSet) getVersion() string {
	if s == nil {
		return ""
	}
	return s.version
}

var (
	_ cachev3.Cache    = xdsCache{}
	_ cachev3.Response = (*sotwResponse)(nil)
)
