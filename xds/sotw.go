package xds

// minimesh runs its ADS streams itself: state of the world here, delta in
// delta.go. go-control-plane's stream kept, per
// type, the last request (an Envoy's EDS request names every cluster), a
// map of the names subscribed to and a map of every name sent: about half
// a megabyte per sidecar at 1000 services, all of it the same for every
// sidecar. Here a stream keeps, per type, its nonce and a cache.SotwState
// (interned names and the set it was last sent), and the cache decides what
// to send (cache/sotw.go).
//
// The stream follows Envoy's xDS protocol:
//   - the first request must carry the node; later ones may omit it, and
//     may not name another node (callbacks.go refuses that);
//   - a request whose response_nonce is not the last nonce sent for its
//     type is stale: the proxy has not seen the latest response yet, and
//     will answer it; it is ignored;
//   - a request replaces the type's subscription and watch; a response
//     the cache delivered for the type that has not been given a nonce
//     yet is dropped, since it answered the old subscription (one with a
//     nonce is sent: the request is stale against it);
//   - a NACK keeps the rejected version from being sent again: the watch
//     waits for a version other than the rejected one, and the next
//     response lists every subscribed resource;
//   - when clusters change, their endpoints are sent again even if they
//     did not change: Envoy warms a changed cluster anew, and it finishes
//     warming only with its endpoints.
// Responses of all types leave through one outbox, in the order the cache
// prepared them (clusters before endpoints, listeners before routes); how
// a stream's goroutines share the work is in stream.go.

import (
	"strconv"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minimesh/minimesh/cache"
)

// sotwServer runs state-of-the-world ADS streams.
type sotwServer struct {
	cache     *cache.Cache
	callbacks *callbacks
	tracker   *Tracker
	activity  func() // Options.Activity
	nextID    atomic.Int64
}

// sotwType is what a stream keeps of one type.
type sotwType struct {
	state    cache.SotwState
	nonce    string // of the last response sent
	version  string // of the last response sent
	reported string // the version the last request reported (what the watch waits to differ from)
	cancel   func() // the open watch, if any
}

// sotwStream is one state-of-the-world ADS stream. Its fields are guarded
// by loop.mu.
type sotwStream struct {
	s      *sotwServer
	id     int64
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	node   *corev3.Node
	types  map[string]*sotwType
	nonce  int64
	loop   streamLoop[*discoveryv3.DiscoveryRequest, *cache.SotwResponse, *discoveryv3.DiscoveryResponse]
}

// serve runs one stream until the proxy or the server ends it.
func (s *sotwServer) serve(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx := stream.Context()
	st := &sotwStream{s: s, id: s.nextID.Add(1), stream: stream, types: map[string]*sotwType{}}
	st.loop.recv, st.loop.handle, st.loop.prepare, st.loop.send = stream.Recv, st.request, st.prepare, stream.Send
	st.loop.activity = s.activity
	if err := s.callbacks.OnStreamOpen(ctx, st.id, ""); err != nil {
		return err
	}
	defer func() {
		for _, t := range st.types {
			if t.cancel != nil {
				t.cancel()
			}
		}
		s.callbacks.OnStreamClosed(st.id, st.node)
	}()

	return st.loop.run()
}

// request handles one request from the proxy.
func (st *sotwStream) request(req *discoveryv3.DiscoveryRequest) error {
	if req.GetNode() != nil {
		if st.node == nil {
			st.node = req.GetNode()
		}
	} else {
		if st.node == nil {
			return errNoNodeID
		}
		req.Node = st.node
	}
	typeURL := req.GetTypeUrl()
	if typeURL == "" {
		return status.Error(codes.InvalidArgument, "every request of an ADS stream must name its type_url")
	}
	t := st.types[typeURL]
	if t == nil {
		t = &sotwType{}
		st.types[typeURL] = t
	}
	if t.nonce != "" && req.GetResponseNonce() != t.nonce {
		// Stale: the proxy has not seen the latest response yet, and
		// will answer it. It is neither an ACK nor a NACK of anything;
		// it must still come from the stream's node.
		return st.s.callbacks.staleRequest(st.id, req)
	}
	if err := st.s.callbacks.OnStreamRequest(st.id, req, t.version); err != nil {
		return err
	}
	version := req.GetVersionInfo()
	if req.GetErrorDetail() != nil && t.nonce != "" {
		// A NACK of the last response: the proxy reports the version
		// it kept. Waiting for a version other than the rejected one
		// keeps the rejected one from being sent again at once, in a
		// loop; the next response then lists everything.
		t.state.Rejected()
		version = t.version
	}
	t.state.Subscribe(req.GetResourceNames())
	t.reported = version
	st.watch(typeURL, t)
	return nil
}

// watch (re)opens the watch of a type, dropping a response already
// prepared for it: that answered what the stream asked before.
func (st *sotwStream) watch(typeURL string, t *sotwType) {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	st.loop.out.drop(func(r *cache.SotwResponse) bool { return r.TypeURL == typeURL })
	t.cancel = st.s.cache.WatchSotw(st.node.GetId(), typeURL, t.reported, t.state, st.loop.deliver)
}

// prepare gives a response its nonce and records it as sent: a request
// the proxy writes from now on answers it, even before it is on the wire.
func (st *sotwStream) prepare(r *cache.SotwResponse) *discoveryv3.DiscoveryResponse {
	t := st.types[r.TypeURL]
	st.nonce++
	msg := r.Message()
	msg.Nonce = strconv.FormatInt(st.nonce, 10)
	t.nonce, t.version = msg.Nonce, r.Version
	t.cancel = nil // the watch fired: it is closed
	refresh := t.state.Sent(r)
	st.s.callbacks.OnStreamResponse(st.stream.Context(), st.id, nil, msg)
	if len(refresh) == 0 {
		return msg
	}
	// Clusters that changed are warmed again by Envoy, and a cluster
	// finishes warming only when it is sent its endpoints, changed or
	// not: they are owed to the stream.
	eds := st.types[resourcev3.EndpointType]
	if eds != nil && eds.state.Owe(refresh) && eds.cancel != nil {
		// (Otherwise there is no endpoint subscription, or its next
		// request will collect them.)
		st.watch(resourcev3.EndpointType, eds)
	}
	return msg
}
