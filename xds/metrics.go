package xds

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Metrics are the xDS server's Prometheus metrics.
type Metrics struct {
	connected *prometheus.GaugeVec
	pushes    *prometheus.CounterVec
	acks      *prometheus.CounterVec
	nacks     *prometheus.CounterVec
	refused   *prometheus.CounterVec

	ackLatency  *prometheus.HistogramVec // response sent -> ACK
	convergence *prometheus.HistogramVec // config change -> ACK
	clock       pushClock
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "minimesh_xds_connected_streams", Help: "Open xDS streams, by proxy flavor (envoy or grpc).",
		}, []string{"flavor"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minimesh_xds_pushes_total", Help: "xDS responses sent, by resource type.",
		}, []string{"type"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minimesh_xds_acks_total", Help: "xDS responses accepted by proxies, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minimesh_xds_nacks_total", Help: "xDS responses rejected by proxies (NACK), by resource type.",
		}, []string{"type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minimesh_xds_refused_streams_total", Help: "xDS streams refused, by reason.",
		}, []string{"reason"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "minimesh_xds_push_ack_duration_seconds",
			Help:    "Time from an xDS response being sent to the proxy's ACK of it, by resource type.",
			Buckets: latencyBuckets,
		}, []string{"type"}),
		convergence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "minimesh_xds_convergence_seconds",
			Help: "Time from a mesh configuration change being handed to the runner to a connected proxy's ACK " +
				"of the first response it caused, by resource type.",
			Buckets: latencyBuckets,
		}, []string{"type"}),
		clock: pushClock{nodes: map[string]map[string]*pushState{}},
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.pushes, m.acks, m.nacks, m.refused, m.ackLatency, m.convergence, buildInfo())
	}
	return m
}

// latencyBuckets span a loopback ACK (1 ms) to a slow fleet (a minute).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// buildInfo is minimesh_build_info{version,go_version} = 1.
func buildInfo() prometheus.Collector {
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" && len(s.Value) >= 12 {
				version = "(devel) " + s.Value[:12]
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "minimesh_build_info",
		Help:        "Always 1; the labels say which minimesh build and Go version are running.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	})
	g.Set(1)
	return g
}

// changeWindow is how long after a config change was applied a first
// response to a proxy is still attributed to it (responses go out from the
// proxies' stream goroutines, after the runner has published).
const changeWindow = 10 * time.Second

// pushClock times responses until their ACK, per node and type.
type pushClock struct {
	mu        sync.Mutex
	changeAt  time.Time // when the latest config change was handed to the runner
	appliedAt time.Time // when the runner finished applying it; zero while in progress
	nodes     map[string]map[string]*pushState
}

// pushState is the timing of one node's one type.
type pushState struct {
	lastSent time.Time // the last response sent
	// The oldest response not yet ACKed (zero: none), and the config
	// change it carries (zero: none, e.g. a proxy's first config).
	pendingSent, pendingChange time.Time
}

// ConfigChange records that a new mesh configuration is being applied; call
// the returned function when the runner has published it. The first
// response each connected proxy then gets, per type, is timed from now to
// its ACK (minimesh_xds_convergence_seconds).
func (m *Metrics) ConfigChange() (applied func()) {
	c := &m.clock
	c.mu.Lock()
	c.changeAt, c.appliedAt = time.Now(), time.Time{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.appliedAt = time.Now()
		c.mu.Unlock()
	}
}

// sent starts timing a response.
func (c *pushClock) sent(nodeID, typeURL string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byType := c.nodes[nodeID]
	if byType == nil {
		byType = map[string]*pushState{}
		c.nodes[nodeID] = byType
	}
	st := byType[typeURL]
	if st == nil {
		st = &pushState{}
		byType[typeURL] = st
	}
	// A response is caused by the change if the proxy already had this
	// type before it, and the change is recent. (A proxy's first config,
	// and later pushes such as certificate rotations, are not.)
	caused := !st.lastSent.IsZero() && st.lastSent.Before(c.changeAt) &&
		(c.appliedAt.IsZero() || now.Sub(c.appliedAt) < changeWindow)
	if st.pendingSent.IsZero() {
		st.pendingSent = now
	}
	if caused && st.pendingChange.IsZero() {
		st.pendingChange = c.changeAt
	}
	st.lastSent = now
}

// acked ends timing: it returns how long the oldest unacknowledged response
// waited and, if it carried a config change, how long since the change.
func (c *pushClock) acked(nodeID, typeURL string, now time.Time) (ack, converge time.Duration, okAck, okConverge bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nodes[nodeID][typeURL]
	if st == nil || st.pendingSent.IsZero() {
		return 0, 0, false, false // a request that re-ACKs, nothing outstanding
	}
	ack, okAck = now.Sub(st.pendingSent), true
	if !st.pendingChange.IsZero() {
		converge, okConverge = now.Sub(st.pendingChange), true
	}
	st.pendingSent, st.pendingChange = time.Time{}, time.Time{}
	return ack, converge, okAck, okConverge
}

// rejected drops the timing of a NACKed response: it did not converge.
func (c *pushClock) rejected(nodeID, typeURL string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.nodes[nodeID][typeURL]; st != nil {
		st.pendingSent, st.pendingChange = time.Time{}, time.Time{}
	}
}

// forget drops a node's timings when one of its streams closes.
func (c *pushClock) forget(nodeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, nodeID)
}

// flavorLabel tells gRPC clients from Envoys by user agent, for metrics.
func flavorLabel(node *corev3.Node) string {
	if isGRPC(node) {
		return "grpc"
	}
	return "envoy"
}

func (m *Metrics) streamOpened(node *corev3.Node) {
	m.connected.WithLabelValues(flavorLabel(node)).Inc()
}
func (m *Metrics) streamClosed(node *corev3.Node) {
	m.connected.WithLabelValues(flavorLabel(node)).Dec()
	m.clock.forget(node.GetId())
}
func (m *Metrics) push(node *corev3.Node, typeURL string) {
	m.pushes.WithLabelValues(shortType(typeURL)).Inc()
	m.clock.sent(node.GetId(), typeURL, time.Now())
}
func (m *Metrics) ack(node *corev3.Node, typeURL string) {
	m.acks.WithLabelValues(shortType(typeURL)).Inc()
	ack, converge, okAck, okConverge := m.clock.acked(node.GetId(), typeURL, time.Now())
	if okAck {
		m.ackLatency.WithLabelValues(shortType(typeURL)).Observe(ack.Seconds())
	}
	if okConverge {
		m.convergence.WithLabelValues(shortType(typeURL)).Observe(converge.Seconds())
	}
}
func (m *Metrics) nack(node *corev3.Node, typeURL string) {
	m.nacks.WithLabelValues(shortType(typeURL)).Inc()
	m.clock.rejected(node.GetId(), typeURL)
}
func (m *Metrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }

// NACKs returns how many NACKs of a type ("Cluster", "Listener", ...) were received.
func (m *Metrics) NACKs(shortTypeName string) float64 {
	return counterValue(m.nacks.WithLabelValues(shortTypeName))
}

// Pushes returns how many responses of a type were sent.
func (m *Metrics) Pushes(shortTypeName string) float64 {
	return counterValue(m.pushes.WithLabelValues(shortTypeName))
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

// Refused returns how many streams or connections were refused for a
// reason ("identity", "secret_name", "tls_handshake", "not_tls", "no_node_id").
func (m *Metrics) Refused(reason string) float64 {
	return counterValue(m.refused.WithLabelValues(reason))
}
