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
//     already prepared for the type but not sent is dropped, since it
//     answered the old subscription;
//   - a NACK keeps the rejected version from being sent again: the watch
//     waits for a version other than the rejected one, and the next
//     response lists every subscribed resource;
//   - when clusters change, their endpoints are sent again even if they
//     did not change: Envoy warms a changed cluster anew, and it finishes
//     warming only with its endpoints.
// Responses of all types leave through one channel, in the order the cache
// prepared them (clusters before endpoints, listeners before routes).

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
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

// sotwStream is one state-of-the-world ADS stream.
type sotwStream struct {
	s      *sotwServer
	id     int64
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	node   *corev3.Node
	types  map[string]*sotwType
	out    chan *cache.SotwResponse
	nonce  int64
}

// serve runs one stream until the proxy or the server ends it.
func (s *sotwServer) serve(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx := stream.Context()
	st := &sotwStream{s: s, id: s.nextID.Add(1), stream: stream, types: map[string]*sotwType{},
		// Room for one response per type being watched, and a few types
		// minimesh does not serve: a watch sends at most one response.
		out: make(chan *cache.SotwResponse, len(cache.Types)+4)}
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

	return runStream(ctx, stream.Recv, st.out, st.send, st.request)
}

// runStream is the loop of an ADS stream, state of the world or delta: it
// sends the responses the cache prepares (out) as they come, and handles
// the proxy's requests in order as they are read, until the proxy or the
// server ends the stream.
func runStream[Req, Resp any](ctx context.Context, recv func() (Req, error), out <-chan Resp,
	send func(Resp) error, handle func(Req) error) error {
	queue, recvErr := readRequests(recv)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			return endOfStream(err)
		case r := <-out:
			if err := send(r); err != nil {
				return err
			}
		case <-queue.ready:
			for _, req := range queue.take() {
				if err := handle(req); err != nil {
					return err
				}
			}
		}
	}
}

// maxPendingRequests bounds the requests a stream holds before handling
// them. Envoy sends a few per response; a client that sends thousands
// without reading is broken or hostile.
const maxPendingRequests = 1000

// readRequests reads a proxy's requests as they come, into a queue, until
// the stream ends; the error that ended it comes out of the channel. A
// stream keeps reading even while it is blocked sending a response: a
// proxy that writes its next request before it reads the response (as
// simple clients do) would otherwise wait for the server while the server
// waits for it, until TCP gives up on the connection.
func readRequests[T any](recv func() (T, error)) (*requestQueue[T], <-chan error) {
	queue := &requestQueue[T]{ready: make(chan struct{}, 1)}
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := recv()
			if err != nil {
				recvErr <- err
				return
			}
			if !queue.push(req) {
				recvErr <- status.Errorf(codes.ResourceExhausted,
					"more than %d requests not yet handled: the proxy sends requests without reading the responses", maxPendingRequests)
				return
			}
		}
	}()
	return queue, recvErr
}

// endOfStream is what a stream returns when reading a request failed.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return nil // the proxy closed the stream
	}
	return err
}

// requestQueue holds the requests read from a proxy and not yet handled.
type requestQueue[T any] struct {
	mu      sync.Mutex
	pending []T
	ready   chan struct{} // holds a value while pending is not empty
}

// push queues a request; false if the queue is full.
func (q *requestQueue[T]) push(req T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxPendingRequests {
		return false
	}
	q.pending = append(q.pending, req)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns the queued requests, in order, and empties the queue.
func (q *requestQueue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.pending
	q.pending = nil
	return out
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
	return st.watch(typeURL, t)
}

// watch (re)opens the watch of a type, dropping a response already
// prepared for it: that answered what the stream asked before.
func (st *sotwStream) watch(typeURL string, t *sotwType) error {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	if err := st.dropPending(typeURL); err != nil {
		return err
	}
	t.cancel = st.s.cache.WatchSotw(st.node.GetId(), typeURL, t.reported, t.state, st.out)
	return nil
}

// dropPending sends the responses already prepared for other types, and
// drops those for typeURL: they answered a subscription just replaced.
func (st *sotwStream) dropPending(typeURL string) error {
	for {
		select {
		case r := <-st.out:
			if r.TypeURL == typeURL {
				continue
			}
			if err := st.send(r); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// send sends a response and records it.
func (st *sotwStream) send(r *cache.SotwResponse) error {
	t := st.types[r.TypeURL]
	st.nonce++
	msg := r.Message()
	msg.Nonce = strconv.FormatInt(st.nonce, 10)
	if err := st.stream.Send(msg); err != nil {
		return err
	}
	t.nonce, t.version = msg.Nonce, r.Version
	t.cancel = nil // the watch fired: it is closed
	refresh := t.state.Sent(r)
	st.s.callbacks.OnStreamResponse(st.stream.Context(), st.id, nil, msg)
	if len(refresh) == 0 {
		return nil
	}
	// Clusters that changed are warmed again by Envoy, and a cluster
	// finishes warming only when it is sent its endpoints, changed or
	// not: they are owed to the stream.
	eds := st.types[resourcev3.EndpointType]
	if eds == nil || !eds.state.Owe(refresh) || eds.cancel == nil {
		return nil // no endpoint subscription, or its next request will collect them
	}
	return st.watch(resourcev3.EndpointType, eds)
}
