package xds

// minimesh runs its delta ADS streams itself, as it does its
// state-of-the-world ones (sotw.go). go-control-plane's delta stream kept,
// per stream and type, a map of every name subscribed to: an Envoy sidecar
// names all 3000 endpoint sets of a 1000-service mesh, and 2000 sidecars
// held 217 MB of those maps. Here a stream keeps, per type, its last nonce
// and version and a cache.DeltaState, whose names are interned and shared
// across streams; the cache decides what to send (cache/delta.go).
//
// The stream follows Envoy's incremental xDS protocol:
//   - the first request must carry the node; later ones may omit it, and
//     may not name another node (callbacks.go refuses that);
//   - every request's subscriptions and unsubscriptions are taken in,
//     whatever its nonce; a request whose response_nonce is the last one
//     sent for its type ACKs or NACKs that response; one with an older
//     nonce can still NACK that older response (a delta response carries
//     only some resources, so the rejection is news), but its ACK tells
//     nothing new;
//   - responses already prepared keep their place in the outbox, ahead of
//     those a request leads to: the cache counts what it prepared as held
//     by the proxy;
//   - a NACK is not answered by resending the rejected resources: they
//     count as held until they change.
// Responses of all types leave through one outbox, in the order the cache
// prepared them (clusters before endpoints, listeners before routes); how
// a stream's goroutines share the work is in stream.go.

import (
	"strconv"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minimesh/minimesh/cache"
)

// deltaServer runs delta ADS streams.
type deltaServer struct {
	cache     *cache.Cache
	callbacks *callbacks
	activity  func() // Options.Activity
	nextID    atomic.Int64
}

// deltaType is what a delta stream keeps of one type.
type deltaType struct {
	state  *cache.DeltaState
	sent   [recentResponses]sentResponse // the last responses sent, newest first
	cancel func()                        // the open watch, if any
}

// recentResponses is how many responses of a type a delta stream
// remembers. A delta response sends only some resources, so a NACK of an
// older one than the last is still news (its resources were rejected);
// Envoy answers each response in turn, and a few in flight is the most a
// stream has.
const recentResponses = 4

// sentResponse is a response's nonce and version.
type sentResponse struct{ nonce, version string }

// replyTo finds the response a request answers: its version, and whether
// it is the last one sent.
func (t *deltaType) replyTo(nonce string) (version string, found, last bool) {
	if t == nil || nonce == "" {
		return "", false, false
	}
	for i, r := range t.sent {
		if r.nonce == nonce {
			return r.version, true, i == 0
		}
	}
	return "", false, false
}

// deltaStream is one delta ADS stream. Its fields are guarded by loop.mu.
type deltaStream struct {
	s      *deltaServer
	id     int64
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	node   *corev3.Node
	types  map[string]*deltaType
	nonce  int64
	loop   streamLoop[*discoveryv3.DeltaDiscoveryRequest, *cache.DeltaResponse, *discoveryv3.DeltaDiscoveryResponse]
}

// serve runs one stream until the proxy or the server ends it.
func (s *deltaServer) serve(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	ctx := stream.Context()
	st := &deltaStream{s: s, id: s.nextID.Add(1), stream: stream, types: map[string]*deltaType{}}
	st.loop.recv, st.loop.handle, st.loop.prepare, st.loop.send = stream.Recv, st.request, st.prepare, stream.Send
	st.loop.activity = s.activity
	if err := s.callbacks.OnDeltaStreamOpen(ctx, st.id, ""); err != nil {
		return err
	}
	defer func() {
		for _, t := range st.types {
			if t.cancel != nil {
				t.cancel()
			}
		}
		s.callbacks.OnDeltaStreamClosed(st.id, st.node)
	}()
	return st.loop.run()
}

// request handles one request from the proxy.
func (st *deltaStream) request(req *discoveryv3.DeltaDiscoveryRequest) error {
	typeURL := req.GetTypeUrl()
	t := st.types[typeURL]
	// An ACK counts for the last response of the type; a NACK for any
	// recent one (it rejected the resources that response carried).
	version, found, last := t.replyTo(req.GetResponseNonce())
	reply := found && (last || req.GetErrorDetail() != nil)
	if err := st.s.callbacks.deltaRequest(st.id, req, version, reply); err != nil {
		return err
	}
	if req.GetNode() != nil {
		if st.node == nil {
			st.node = req.GetNode()
		}
	} else {
		req.Node = st.node // the callbacks refused a first request without one
	}
	if typeURL == "" {
		return status.Error(codes.InvalidArgument, "every request of an ADS stream must name its type_url")
	}
	if t == nil {
		t = &deltaType{state: cache.NewDeltaState(typeURL)}
		st.types[typeURL] = t
	}
	if t.cancel != nil {
		t.cancel()
	}
	t.cancel = st.s.cache.WatchDelta(st.node.GetId(), t.state, req, st.loop.deliver)
	return nil
}

// prepare gives a response its nonce and records it as sent: a request
// the proxy writes from now on answers it, even before it is on the wire.
func (st *deltaStream) prepare(r *cache.DeltaResponse) *discoveryv3.DeltaDiscoveryResponse {
	t := st.types[r.TypeURL]
	st.nonce++
	msg := r.Message()
	msg.Nonce = strconv.FormatInt(st.nonce, 10)
	// (t.cancel is kept: the watch that fired may already have been
	// replaced by the next request's, and cancelling a fired one is a no-op.)
	copy(t.sent[1:], t.sent[:len(t.sent)-1])
	t.sent[0] = sentResponse{nonce: msg.Nonce, version: r.Version}
	st.s.callbacks.OnStreamDeltaResponse(st.id, msg)
	return msg
}
