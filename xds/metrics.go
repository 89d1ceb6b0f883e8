package xds

import (
	"runtime"
	"runtime/debug"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/minimesh/minimesh/cache"
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
func (m *Metrics) push(typeURL string) { m.pushes.WithLabelValues(cache.ShortType(typeURL)).Inc() }
func (m *Metrics) ack(typeURL string, tm timing) {
	m.acks.WithLabelValues(cache.ShortType(typeURL)).Inc()
	if tm.okAck {
		m.ackLatency.WithLabelValues(cache.ShortType(typeURL)).Observe(tm.ack.Seconds())
	}
	if tm.okConverge {
		m.convergence.WithLabelValues(cache.ShortType(typeURL)).Observe(tm.converge.Seconds())
	}
}
func (m *Metrics) nack(typeURL string)  { m.nacks.WithLabelValues(cache.ShortType(typeURL)).Inc() }
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
