package xds

import (
	"context"
	"sort"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
)

// Hooks is how the xDS server tells the rest of the control plane about
// proxies. The runner implements it: it builds and publishes snapshots.
type Hooks interface {
	// Authorize is called for every new stream, before anything else: it
	// refuses (with an error) a client whose identity does not match the
	// node it claims to be.
	Authorize(node *corev3.Node, peer Peer) error
	// Connect is called when a node opens its first stream, before its
	// first request is answered. It must publish a snapshot for the node
	// before returning, or return an error to refuse the stream.
	Connect(node *corev3.Node) error
	// Listeners is called when the listener names a node subscribes to
	// change (proxyless gRPC asks for listeners by name), before the
	// request is answered, with every name the node's streams ask for.
	Listeners(node *corev3.Node, names []string)
	// Disconnect is called when a node's last stream has closed.
	Disconnect(nodeID string)
}

// callbacks is what the streams (sotw.go, delta.go) report to: it tracks
// streams, ACKs and NACKs, and calls the hooks.
type callbacks struct {
	hooks   Hooks
	tracker *Tracker
	metrics *Metrics
	log     *zap.Logger

	// secrets are the only SDS secret names a proxy may ask for; nil: any.
	secrets map[string]bool

	mu      sync.Mutex
	streams map[streamKey]*streamState
	byNode  map[string]map[streamKey]*streamState // the same streams, by node ID
	peers   map[streamKey]Peer                    // from OnStreamOpen until the first request

	nodes nodeLocks // serializes each node's connect and disconnect
}

// nodeLocks is a mutex per node ID, held only while in use.
type nodeLocks struct {
	mu    sync.Mutex
	locks map[string]*nodeLock
}

type nodeLock struct {
	sync.Mutex
	users int
}

// lock locks id's mutex and returns the function that unlocks it.
func (l *nodeLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*nodeLock{}
	}
	nl := l.locks[id]
	if nl == nil {
		nl = &nodeLock{}
		l.locks[id] = nl
	}
	nl.users++
	l.mu.Unlock()
	nl.Lock()
	return func() {
		nl.Unlock()
		l.mu.Lock()
		if nl.users--; nl.users == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

// streamKey identifies a stream. State-of-the-world and delta streams are
// numbered separately, so the same number can be both.
type streamKey struct {
	delta bool
	id    int64
}

// streamState is what the server knows of one open stream.
type streamState struct {
	node      *corev3.Node
	listeners map[string]bool // LDS names this stream subscribes to
}

func newCallbacks(hooks Hooks, tracker *Tracker, metrics *Metrics, log *zap.Logger, secrets []string) *callbacks {
	c := &callbacks{hooks: hooks, tracker: tracker, metrics: metrics, log: log,
		streams: map[streamKey]*streamState{}, byNode: map[string]map[streamKey]*streamState{}, peers: map[streamKey]Peer{}}
	if len(secrets) > 0 {
		c.secrets = map[string]bool{}
		for _, s := range secrets {
			c.secrets[s] = true
		}
	}
	return c
}

func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.opened(streamKey{id: id}, ctx)
	return nil
}

func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.opened(streamKey{delta: true, id: id}, ctx)
	return nil
}

// opened remembers who is at the other end of a new stream.
func (c *callbacks) opened(id streamKey, ctx context.Context) {
	c.mu.Lock()
	c.peers[id] = peerOf(ctx)
	c.mu.Unlock()
}

func (c *callbacks) OnStreamClosed(id int64, node *corev3.Node) { c.closed(streamKey{id: id}) }

func (c *callbacks) OnDeltaStreamClosed(id int64, node *corev3.Node) {
	c.closed(streamKey{delta: true, id: id})
}

// closed forgets a stream, and the node when it was its last.
func (c *callbacks) closed(id streamKey) {
	c.mu.Lock()
	st := c.streams[id]
	delete(c.streams, id)
	if st != nil {
		delete(c.byNode[st.node.GetId()], id)
		if len(c.byNode[st.node.GetId()]) == 0 {
			delete(c.byNode, st.node.GetId())
		}
	}
	delete(c.peers, id)
	c.mu.Unlock()
	if st == nil {
		return // closed before its first request
	}
	c.metrics.streamClosed(st.node)
	c.log.Info("stream closed", zap.String("proxy", st.node.GetId()), zap.Int64("stream", id.id), zap.Bool("delta", id.delta))
	unlock := c.nodes.lock(st.node.GetId())
	last := c.tracker.streamClosed(st.node.GetId())
	if last {
		c.hooks.Disconnect(st.node.GetId())
	}
	unlock()
	if !last {
		c.updateListeners(st.node)
	}
}

// stream returns the state of a stream, registering it (and connecting the
// node) on its first request.
func (c *callbacks) stream(id streamKey, node *corev3.Node) (*streamState, error) {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	if st != nil {
		// go-control-plane takes the node of every request that carries
		// one, and answers for it: a stream authorized as one node must
		// never ask as another, or it would get that node's configuration
		// (and its private key).
		if node != nil && node.GetId() != st.node.GetId() {
			c.metrics.refuse("node_changed")
			c.log.Warn("xDS stream refused: it changed its node ID", zap.String("proxy", st.node.GetId()),
				zap.String("new_node_id", node.GetId()))
			return nil, refused("this stream was authorized as node %q; it cannot ask as %q", st.node.GetId(), node.GetId())
		}
		return st, nil
	}
	if node.GetId() == "" {
		c.metrics.refuse("no_node_id")
		return nil, errNoNodeID
	}
	c.mu.Lock()
	p := c.peers[id]
	c.mu.Unlock()
	if err := c.hooks.Authorize(node, p); err != nil {
		c.metrics.refuse("identity")
		c.log.Warn("xDS stream refused", zap.String("proxy", node.GetId()), zap.String("peer", p.SPIFFEID),
			zap.String("remote", p.Address), zap.Error(err))
		return nil, refused("%v", err)
	}
	st = &streamState{node: node, listeners: map[string]bool{}}
	// A node's first stream connecting and its last stream closing are
	// serialized, so that a late Disconnect never forgets a node that has
	// just connected again.
	unlock := c.nodes.lock(node.GetId())
	defer unlock()
	first, otherAgent := c.tracker.streamOpened(node)
	if !first && otherAgent != node.GetUserAgentName() {
		// One node ID, two kinds of client: they share one configuration,
		// built for whichever connected first. Almost always a copied
		// bootstrap.
		c.log.Warn("two different proxies use the same node ID; give each its own",
			zap.String("proxy", node.GetId()), zap.String("user_agent", node.GetUserAgentName()),
			zap.String("other_user_agent", otherAgent))
	}
	if first {
		if err := c.hooks.Connect(node); err != nil {
			c.tracker.streamClosed(node.GetId())
			c.log.Warn("proxy refused", zap.String("proxy", node.GetId()), zap.Error(err))
			return nil, err
		}
	}
	c.mu.Lock()
	c.streams[id] = st
	if c.byNode[node.GetId()] == nil {
		c.byNode[node.GetId()] = map[streamKey]*streamState{}
	}
	c.byNode[node.GetId()][id] = st
	c.mu.Unlock()
	c.metrics.streamOpened(node)
	c.log.Info("stream opened", zap.String("proxy", node.GetId()), zap.String("user_agent", node.GetUserAgentName()),
		zap.Int64("stream", id.id), zap.Bool("delta", id.delta))
	return st, nil
}

// staleRequest vets a request the stream ignores (its nonce is not the
// latest one sent): it is no ACK or NACK, but it must come from the
// stream's node like any other.
func (c *callbacks) staleRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	_, err := c.stream(streamKey{id: id}, req.GetNode())
	return err
}

// OnStreamRequest vets a state-of-the-world request that answers the
// stream's last response of its type, which had version sent, and records
// the ACK or NACK it carries.
func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest, sent string) error {
	st, err := c.stream(streamKey{id: id}, req.GetNode())
	if err != nil {
		return err
	}
	if err := c.checkSecrets(st.node, req.GetTypeUrl(), req.GetResourceNames()); err != nil {
		return err
	}
	c.request(st.node, req.GetTypeUrl(), req.GetVersionInfo(), sent, req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	if req.GetTypeUrl() == resourcev3.ListenerType {
		c.setListeners(st, req.GetResourceNames(), nil, true)
	}
	return nil
}

// checkSecrets refuses a request for an SDS secret other than the proxy's
// own ("default", "ROOTCA"): nothing else exists for it, and asking is a
// sign of a misconfigured or hostile client.
func (c *callbacks) checkSecrets(node *corev3.Node, typeURL string, names []string) error {
	if typeURL != resourcev3.SecretType || c.secrets == nil {
		return nil
	}
	for _, n := range names {
		if !c.secrets[n] {
			c.metrics.refuse("secret_name")
			c.log.Warn("request for a secret that is not the proxy's own; stream refused",
				zap.String("proxy", node.GetId()), zap.String("secret", n))
			return refused("secret %q: a proxy may ask only for its own secrets (default, ROOTCA)", n)
		}
	}
	return nil
}

// deltaRequest vets a delta request and records the ACK or NACK it
// carries, if it replies to a response of the stream (reply), which had
// version. Delta requests carry no version of their own.
func (c *callbacks) deltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest, version string, reply bool) error {
	st, err := c.stream(streamKey{delta: true, id: id}, req.GetNode())
	if err != nil {
		return err
	}
	if reply {
		c.request(st.node, req.GetTypeUrl(), version, version, req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	}
	if err := c.checkSecrets(st.node, req.GetTypeUrl(), req.GetResourceNamesSubscribe()); err != nil {
		return err
	}
	if req.GetTypeUrl() == resourcev3.ListenerType {
		c.setListeners(st, req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), false)
	}
	return nil
}

// request records an ACK of version acked, or a NACK of version rejected.
// A NACK is logged once per version and message, and counted.
func (c *callbacks) request(node *corev3.Node, typeURL, acked, rejected, nonce, message string, nack bool) {
	if nonce == "" {
		return // an initial request, not a reply
	}
	if !nack {
		c.metrics.ack(typeURL, c.tracker.acked(node.GetId(), typeURL, acked))
		return
	}
	isNew := c.tracker.nacked(node.GetId(), typeURL, rejected, nonce, message)
	c.metrics.nack(typeURL)
	if isNew {
		c.log.Warn("proxy rejected configuration (NACK)", zap.String("proxy", node.GetId()),
			zap.String("type", typeURL), zap.String("version", rejected), zap.String("nonce", nonce),
			zap.String("error", message))
	}
}

// setListeners updates the LDS names of one stream (replacing them for
// state of the world, adding and removing for delta) and tells the hooks
// when the node's set changed.
func (c *callbacks) setListeners(st *streamState, add, remove []string, replace bool) {
	c.mu.Lock()
	changed := false
	if replace {
		if len(add) != len(st.listeners) {
			changed = true
		}
		next := make(map[string]bool, len(add))
		for _, n := range add {
			next[n] = true
			if !st.listeners[n] {
				changed = true
			}
		}
		st.listeners = next
	} else {
		for _, n := range add {
			if !st.listeners[n] {
				st.listeners[n], changed = true, true
			}
		}
		for _, n := range remove {
			if st.listeners[n] {
				delete(st.listeners, n)
				changed = true
			}
		}
	}
	c.mu.Unlock()
	if changed {
		c.updateListeners(st.node)
	}
}

// updateListeners passes the union of the node's streams' LDS names to
// the hooks.
func (c *callbacks) updateListeners(node *corev3.Node) {
	c.mu.Lock()
	union := map[string]bool{}
	for _, st := range c.byNode[node.GetId()] {
		for n := range st.listeners {
			union[n] = true
		}
	}
	c.mu.Unlock()
	names := make([]string, 0, len(union))
	for n := range union {
		names = append(names, n)
	}
	sort.Strings(names)
	c.hooks.Listeners(node, names)
}

func (c *callbacks) OnStreamResponse(ctx context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.sent(streamKey{id: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
}

func (c *callbacks) OnStreamDeltaResponse(id int64, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.sent(streamKey{delta: true, id: id}, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// sent records a response.
func (c *callbacks) sent(id streamKey, typeURL, version, nonce string) {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	if st == nil {
		return
	}
	c.tracker.sentResponse(st.node.GetId(), typeURL, version, nonce)
	c.metrics.push(typeURL)
	c.log.Debug("pushed", zap.String("proxy", st.node.GetId()), zap.String("type", typeURL),
		zap.String("version", version), zap.String("nonce", nonce))
}
