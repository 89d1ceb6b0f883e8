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

	// Timing, for the push -> ACK and change -> ACK metrics: when the last
	// response was sent, the oldest response not yet ACKed (zero: none),
	// and the config change it carries (zero: none, such as a proxy's
	// first config).
	lastSentAt, pendingSent, pendingChange time.Time
}

// timing is how long an ACKed response took, as the metrics report it.
type timing struct {
	ack, converge     time.Duration
	okAck, okConverge bool
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

	// The latest mesh configuration change: when it was handed to the
	// runner, and when the runner had published it (zero while it works).
	changeAt, appliedAt time.Time
}

// changeWindow is how long after a config change was applied a first
// response to a proxy is still attributed to it (responses go out from the
// proxies' stream goroutines, after the runner has published).
const changeWindow = 10 * time.Second

// ConfigChange records that a new mesh configuration is being applied; call
// the returned function when the runner has published it. The first
// response each connected proxy then gets, per type, is timed from now to
// its ACK (minimesh_xds_convergence_seconds).
func (t *Tracker) ConfigChange() (applied func()) {
	t.mu.Lock()
	t.changeAt, t.appliedAt = time.Now(), time.Time{}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.appliedAt = time.Now()
		t.mu.Unlock()
	}
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
	now := time.Now()
	ts.SentVersion, ts.SentNonce, ts.Updated = version, nonce, now

	// A response is caused by the latest change if the proxy already had
	// this type before it, and the change is recent. (A proxy's first
	// config, and later pushes such as certificate rotations, are not.)
	caused := !ts.lastSentAt.IsZero() && ts.lastSentAt.Before(t.changeAt) &&
		(t.appliedAt.IsZero() || now.Sub(t.appliedAt) < changeWindow)
	if ts.pendingSent.IsZero() {
		ts.pendingSent = now
	}
	if caused && ts.pendingChange.IsZero() {
		ts.pendingChange = t.changeAt
	}
	ts.lastSentAt = now
}

// acked records that a node accepted version, and returns how long the
// oldest unacknowledged response waited and, if it carried a config change,
// how long since the change.
func (t *Tracker) acked(nodeID, typeURL, version string) timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.typeStatus(nodeID, typeURL)
	now := time.Now()
	if ts.AckedVersion != version || ts.LastNACK != nil {
		ts.AckedVersion, ts.LastNACK, ts.Updated = version, nil, now
	}
	var tm timing
	if !ts.pendingSent.IsZero() { // else a request that re-ACKs, nothing outstanding
		tm.ack, tm.okAck = now.Sub(ts.pendingSent), true
		if !ts.pendingChange.IsZero() {
			tm.converge, tm.okConverge = now.Sub(ts.pendingChange), true
		}
	}
	ts.pendingSent, ts.pendingChange = time.Time{}, time.Time{}
	return tm
}

// nacked records the rejection of version (which the stream that sent it
// knows: nonces are per stream) and reports whether it is new (a different
// version or message than the last one recorded), so it is logged once.
func (t *Tracker) nacked(nodeID, typeURL, version, nonce, message string) (isNew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.typeStatus(nodeID, typeURL)
	ts.pendingSent, ts.pendingChange = time.Time{}, time.Time{} // it did not converge
	if last := ts.LastNACK; last != nil && last.Version == version && last.Message == message {
		return false
	}
	ts.LastNACK = &NACK{Version: version, Nonce: nonce, Message: message, Time: time.Now()}
	ts.Updated = ts.LastNACK.Time
	return true
}

// Proxies returns a copy of every connected proxy's status, sorted by node ID.
func (t *Tracker) Proxies() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.proxies))
	for _, p := range t.proxies {
		out = append(out, copyStatus(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// copyStatus copies a proxy's status so callers can read it unlocked.
func copyStatus(p *ProxyStatus) ProxyStatus {
	c := ProxyStatus{NodeID: p.NodeID, UserAgent: p.UserAgent, Streams: p.Streams, Types: make(map[string]*TypeStatus, len(p.Types))}
	for typ, ts := range p.Types {
		cp := *ts
		if ts.LastNACK != nil {
			n := *ts.LastNACK
			cp.LastNACK = &n
		}
		c.Types[typ] = &cp
	}
	return c
}

// Proxy returns a copy of one proxy's status.
func (t *Tracker) Proxy(nodeID string) (ProxyStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.proxies[nodeID]
	if p == nil {
		return ProxyStatus{}, false
	}
	return copyStatus(p), true
}
