package xds

import (
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
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.pushes, m.acks, m.nacks, m.refused)
	}
	return m
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
}
func (m *Metrics) push(node *corev3.Node, typeURL string) {
	m.pushes.WithLabelValues(shortType(typeURL)).Inc()
}
func (m *Metrics) ack(node *corev3.Node, typeURL string) {
	m.acks.WithLabelValues(shortType(typeURL)).Inc()
}
func (m *Metrics) nack(node *corev3.Node, typeURL string) {
	m.nacks.WithLabelValues(shortType(typeURL)).Inc()
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
