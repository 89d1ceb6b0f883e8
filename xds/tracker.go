package xds

import (
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// TypeStatus is where one proxy stands for one xDS type.
type TypeStatus struct {
	SentVersion  string    // last version sent
	SentNonce    string    // nonce of the last response
	AckedVersion string    // last version the proxy accepted
	LastNACK     *NACK     // last rejection, nil if none since the last ACK
	Updated      time.Time // when any of the above last changed

	// The response before the last one: a NACK of it may still arrive.
	prevNonce, prevVersion string
}

// versionOf returns the version of a recent response by nonce.
func (ts *TypeStatus) versionOf(nonce string) (string, bool) {
	switch nonce {
	case "":
		return "", false
	case ts.SentNonce:
		return ts.SentVersion, true
	case ts.prevNonce:
		return ts.prevVersion, true
	}
	return "", false
}

// NACK is a rejected response: the version and the proxy's error text.
type NACK struct {
	Version string
	Nonce   string
	Message string
	Time    time.Time
}

// ProxyStatus is the xDS state of one node.
type ProxyStatus struct {
	NodeID    string
	UserAgent string
	Streams   int
	Types     map[string]*TypeStatus // by type URL
}

// Tracker records, per proxy and type, what was sent, acknowledged and
// rejected. It is the source for logs, metrics and the debug endpoints.
type Tracker struct {
	mu      sync.Mutex
	proxies map[string]*ProxyStatus
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{proxies: map[string]*ProxyStatus{}}
}

// streamOpened counts a stream for node and reports whether it is the
// node's first, and the user agent the node's other streams use.
func (t *Tracker) streamOpened(node *corev3.Node) (first bool, otherAgent string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[node.GetId()]
	if p == nil {
		p = &ProxyStatus{NodeID: node.GetId(), Types: map[string]*TypeStatus{}}
		t.proxies[node.GetId()] = p
	}
	otherAgent = p.UserAgent
	p.UserAgent = node.GetUserAgentName()
	p.Streams++
	return p.Streams == 1, otherAgent
}

// streamClosed uncounts a stream and reports whether it was the node's last.
func (t *Tracker) streamClosed(nodeID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[nodeID]
	if p == nil {
		return false
	}
	p.Streams--
	if p.Streams > 0 {
		return false
	}
	delete(t.proxies, nodeID)
	return true
}

// typeStatus returns the status of one type of one node, creating it.
func (t *Tracker) typeStatus(nodeID, typeURL string) *TypeStatus {
	p := t.proxies[nodeID]
	if p == nil {
		p = &ProxyStatus{NodeID: nodeID, Types: map[string]*TypeStatus{}}
		t.proxies[nodeID] = p
	}
	ts := p.Types[typeURL]
	if ts == nil {
		ts = &TypeStatus{}
		p.Types[typeURL] = ts
	}
	return ts
}

// sentResponse records a response sent to a node.
func (t *Tracker) sentResponse(nodeID, typeURL, version, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.typeStatus(nodeID, typeURL)
	ts.prevNonce, ts.prevVersion = ts.SentNonce, ts.SentVersion
	ts.SentVersion, ts.SentNonce, ts.Updated = version, nonce, time.Now()
}

// acked records that a node accepted version.
func (t *Tracker) acked(nodeID, typeURL, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.typeStatus(nodeID, typeURL)
	if ts.AckedVersion != version || ts.LastNACK != nil {
		ts.AckedVersion, ts.LastNACK, ts.Updated = version, nil, time.Now()
	}
}

// nacked records a rejection and reports whether it is new (a different
// version or message than the last one recorded), so it is logged once.
func (t *Tracker) nacked(nodeID, typeURL, nonce, message string) (version string, isNew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.typeStatus(nodeID, typeURL)
	version, _ = ts.versionOf(nonce)
	if last := ts.LastNACK; last != nil && last.Version == version && last.Message == message {
		return version, false
	}
	ts.LastNACK = &NACK{Version: version, Nonce: nonce, Message: message, Time: time.Now()}
	ts.Updated = ts.LastNACK.Time
	return version, true
}

// rejectedVersion returns the version a response nonce carried.
func (t *Tracker) rejectedVersion(nodeID, typeURL, nonce string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.typeStatus(nodeID, typeURL).versionOf(nonce)
}

// Proxies returns a copy of every connected proxy's status, sorted by node ID.
func (t *Tracker) Proxies() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.proxies))
	for _, p := range t.proxies {
		c := ProxyStatus{NodeID: p.NodeID, UserAgent: p.UserAgent, Streams: p.Streams, Types: map[string]*TypeStatus{}}
		for typ, ts := range p.Types {
			cp := *ts
			if ts.LastNACK != nil {
				n := *ts.LastNACK
				cp.LastNACK = &n
			}
			c.Types[typ] = &cp
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Proxy returns one proxy's status.
func (t *Tracker) Proxy(nodeID string) (ProxyStatus, bool) {
	for _, p := range t.Proxies() {
		if p.NodeID == nodeID {
			return p, true
		}
	}
	return ProxyStatus{}, false
}
