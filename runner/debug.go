package runner

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/translator"
	"github.com/minimesh/minimesh/xds"
)

// Sync states of one xDS type of one proxy, as /debug/syncz and
// `minimesh proxy-status` report them.
const (
	SyncSynced  = "SYNCED"   // the proxy ACKed the last version sent
	SyncStale   = "STALE"    // a version was sent and is not ACKed yet
	SyncNACKed  = "NACKED"   // the proxy rejected the last version sent
	SyncNotSent = "NOT SENT" // nothing of this type was sent
)

// ProxySync is one connected proxy in /debug/syncz.
type ProxySync struct {
	Proxy     string `json:"proxy"` // node ID
	UserAgent string `json:"user_agent"`
	Flavor    string `json:"flavor"` // "envoy" or "grpc"
	Streams   int    `json:"streams"`
	// Types has one entry per xDS type minimesh serves, keyed by its short
	// name: Cluster, ClusterLoadAssignment, Listener, RouteConfiguration,
	// Secret.
	Types map[string]TypeSync `json:"types"`
}

// TypeSync is where one proxy stands for one xDS type.
type TypeSync struct {
	TypeURL string `json:"type_url"`
	Status  string `json:"status"` // SYNCED, STALE, NACKED or NOT SENT
	// InSync: the proxy ACKed the version last sent (SYNCED).
	InSync       bool   `json:"in_sync"`
	SentVersion  string `json:"sent_version,omitempty"`
	SentNonce    string `json:"sent_nonce,omitempty"`
	AckedVersion string `json:"acked_version,omitempty"`
	// PublishedVersion is the version the control plane holds for the
	// proxy now; when it differs from SentVersion a push is on its way (or
	// the proxy has not asked for this type).
	PublishedVersion string     `json:"published_version,omitempty"`
	LastNACK         *NACKSync  `json:"last_nack,omitempty"` // since the last ACK
	Updated          *time.Time `json:"updated,omitempty"`
}

// NACKSync is a rejected response.
type NACKSync struct {
	Version string    `json:"version"`
	Nonce   string    `json:"nonce"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// ConfigDump is a proxy's published configuration in /debug/config_dump,
// with secrets redacted.
type ConfigDump struct {
	Proxy string     `json:"proxy"`
	Types []TypeDump `json:"types"` // in push order: clusters, endpoints, listeners, routes, secrets
}

// TypeDump is the resources of one type.
type TypeDump struct {
	TypeURL   string         `json:"type_url"`
	Version   string         `json:"version"`
	Resources []ResourceDump `json:"resources"` // by name
}

// ResourceDump is one resource as protojson, or the error that kept it out.
type ResourceDump struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Redacted replaces secret material (private keys, passwords, session
// ticket keys, generic secrets) in config dumps.
const Redacted = "[redacted]"

// DebugHandler serves the debug endpoints. Bind it to loopback: config
// dumps show every proxy's configuration (without private keys) and pprof
// can slow the process down.
//
//	/debug/syncz                      every connected proxy's sync state per xDS type (JSON)
//	/debug/config_dump?proxy=NAME.NS  a proxy's published configuration (JSON, secrets redacted)
//	/debug/pprof/                     Go profiles (net/http/pprof)
func (cp *ControlPlane) DebugHandler() http.Handler {
	return newDebugHandler(cp.Server.Tracker, cp.Runner)
}

func newDebugHandler(tracker *xds.Tracker, r *Runner) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/{$}", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, debugIndex)
	})
	mux.HandleFunc("GET /debug/syncz", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, syncz(tracker, r.cache))
	})
	mux.HandleFunc("GET /debug/config_dump", func(w http.ResponseWriter, req *http.Request) {
		id := req.URL.Query().Get("proxy")
		if id == "" {
			http.Error(w, "config_dump: ?proxy=NAME.NAMESPACE is required (the node ID; see /debug/syncz)", http.StatusBadRequest)
			return
		}
		snap := r.cache.Get(id)
		if snap == nil {
			http.Error(w, fmt.Sprintf("config_dump: no proxy %q is connected (see /debug/syncz for those that are)", id),
				http.StatusNotFound)
			return
		}
		writeJSON(w, configDump(id, snap))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

const debugIndex = `minimesh debug endpoints
  /debug/syncz                      sync state of every connected proxy, per xDS type (JSON)
  /debug/config_dump?proxy=NAME.NS  a proxy's published configuration (JSON, secrets redacted)
  /debug/pprof/                     Go profiles
`

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}

// syncz is the sync state of every connected proxy, sorted by node ID.
func syncz(tracker *xds.Tracker, c *cache.Cache) []ProxySync {
	out := []ProxySync{}
	for _, p := range tracker.Proxies() {
		ps := ProxySync{
			Proxy: p.NodeID, UserAgent: p.UserAgent, Streams: p.Streams,
			Flavor: string(translator.FlavorOf(&corev3.Node{UserAgentName: p.UserAgent})),
			Types:  make(map[string]TypeSync, len(cache.Types)),
		}
		snap := c.Get(p.NodeID)
		for _, t := range cache.Types {
			ts := TypeSync{TypeURL: t, Status: SyncNotSent}
			if snap != nil {
				ts.PublishedVersion = snap.GetVersion(t)
			}
			if st := p.Types[t]; st != nil {
				ts.SentVersion, ts.SentNonce, ts.AckedVersion = st.SentVersion, st.SentNonce, st.AckedVersion
				if !st.Updated.IsZero() {
					updated := st.Updated
					ts.Updated = &updated
				}
				if n := st.LastNACK; n != nil {
					ts.LastNACK = &NACKSync{Version: n.Version, Nonce: n.Nonce, Message: n.Message, Time: n.Time}
				}
				ts.Status = syncStatus(st)
			}
			ts.InSync = ts.Status == SyncSynced
			ps.Types[cache.ShortType(t)] = ts
		}
		out = append(out, ps)
	}
	return out
}

// syncStatus sums up one type of one proxy.
func syncStatus(st *xds.TypeStatus) string {
	switch {
	case st.LastNACK != nil:
		return SyncNACKed
	case st.SentNonce == "":
		return SyncNotSent
	case st.AckedVersion == st.SentVersion:
		return SyncSynced
	default:
		return SyncStale
	}
}

// configDump renders a snapshot as protojson, secrets redacted. The
// snapshot's resources are shared with the xDS server: they are cloned,
// never changed.
func configDump(id string, snap *cache.Snapshot) ConfigDump {
	d := ConfigDump{Proxy: id, Types: []TypeDump{}}
	mo := protojson.MarshalOptions{UseProtoNames: true}
	for _, t := range cache.Types {
		td := TypeDump{TypeURL: t, Version: snap.GetVersion(t), Resources: []ResourceDump{}}
		versions := snap.GetVersionMap(t)
		for name, res := range snap.GetResources(t) {
			rd := ResourceDump{Name: name, Version: versions[name]}
			m := proto.Clone(res)
			redact(m.ProtoReflect())
			if b, err := mo.Marshal(m); err != nil {
				rd.Error = err.Error()
			} else {
				rd.Resource = b
			}
			td.Resources = append(td.Resources, rd)
		}
		sort.Slice(td.Resources, func(i, j int) bool { return td.Resources[i].Name < td.Resources[j].Name })
		d.Types = append(d.Types, td)
	}
	return d
}

// redactedSource stands in for a secret data source.
func redactedSource() *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: Redacted}}
}

// redact replaces secret material in m, wherever it is nested (inside Any
// fields too, such as a transport socket's typed_config). It changes m in
// place and reports whether anything was replaced.
func redact(m protoreflect.Message) bool {
	changed := false
	switch v := m.Interface().(type) {
	case *tlsv3.TlsCertificate:
		// The certificate chain is public; everything that proves
		// possession of the key is not.
		for _, ds := range []**corev3.DataSource{&v.PrivateKey, &v.Password, &v.Pkcs12} {
			if *ds != nil {
				*ds, changed = redactedSource(), true
			}
		}
		if v.PrivateKeyProvider != nil {
			v.PrivateKeyProvider, changed = &tlsv3.PrivateKeyProvider{ProviderName: Redacted}, true
		}
	case *tlsv3.GenericSecret:
		if v.Secret != nil {
			v.Secret, changed = redactedSource(), true
		}
		for k := range v.Secrets {
			v.Secrets[k], changed = redactedSource(), true
		}
	case *tlsv3.TlsSessionTicketKeys:
		for i := range v.Keys {
			v.Keys[i], changed = redactedSource(), true
		}
	case *corev3.DataSource:
		// Wherever else a key turns up inline, it goes too.
		if bytes.Contains(v.GetInlineBytes(), []byte("PRIVATE KEY")) || strings.Contains(v.GetInlineString(), "PRIVATE KEY") {
			v.Specifier, changed = &corev3.DataSource_InlineString{InlineString: Redacted}, true
		}
		return changed
	case *anypb.Any:
		inner, err := v.UnmarshalNew()
		if err != nil {
			// Unknown type: protojson cannot print it either, and the
			// resource is reported as an error without its content.
			return false
		}
		if redact(inner.ProtoReflect()) {
			if err := anypb.MarshalFrom(v, inner, proto.MarshalOptions{Deterministic: true}); err != nil {
				v.Value = nil // never leave the original bytes behind
			}
			return true
		}
		return false
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if k := fd.MapValue().Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
				val.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					changed = redact(mv.Message()) || changed
					return true
				})
			}
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				changed = redact(l.Get(i).Message()) || changed
			}
		default:
			changed = redact(val.Message()) || changed
		}
		return true
	})
	return changed
}

// registerMetrics exports the runner's counters and the certificates'
// expiry as Prometheus metrics, read when scraped.
func (r *Runner) registerMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "minimesh_config_errors_total",
			Help: "Proxy configurations refused (translation, certificate or snapshot checks failed); " +
				"each such proxy kept its last good configuration.",
		}, func() float64 { return float64(r.Stats().TranslateErrors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "minimesh_mesh_updates_total", Help: "Mesh snapshots received from the watcher and applied.",
		}, func() float64 { return float64(r.Stats().Updates) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "minimesh_proxy_publishes_total", Help: "Proxy snapshots published because their content changed.",
		}, func() float64 { return float64(r.Stats().Publishes) }),
	)
	if r.ca == nil {
		return
	}
	served := &certExpiry{}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minimesh_ca_root_expiry_timestamp_seconds",
			Help: "When the first of the trusted root certificates expires (Unix time).",
		}, func() float64 {
			var first time.Time
			for _, c := range r.ca.TrustBundle() {
				if first.IsZero() || c.NotAfter.Before(first) {
					first = c.NotAfter
				}
			}
			return unixSeconds(first)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "minimesh_workload_cert_expiry_timestamp_seconds",
			Help: "When the first of the workload certificates served to connected proxies expires (Unix time; 0: none served).",
		}, func() float64 { return unixSeconds(served.earliest(r)) }),
	)
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// certExpiry finds the earliest expiry among the workload certificates in
// the connected proxies' snapshots, parsing each distinct certificate once.
type certExpiry struct {
	mu     sync.Mutex
	parsed map[string]time.Time // by certificate chain PEM
}

func (e *certExpiry) earliest(r *Runner) time.Time {
	r.mu.Lock()
	ids := make([]string, 0, len(r.proxies))
	for id := range r.proxies {
		ids = append(ids, id)
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]time.Time, len(e.parsed))
	var first time.Time
	for _, id := range ids {
		snap := r.cache.Get(id)
		if snap == nil {
			continue
		}
		s, ok := snap.GetResources(resourcev3.SecretType)[translator.SecretWorkloadCert].(*tlsv3.Secret)
		if !ok {
			continue
		}
		chain := s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
		notAfter, ok := seen[string(chain)]
		if !ok {
			if notAfter, ok = e.parsed[string(chain)]; !ok {
				notAfter = leafNotAfter(chain)
			}
			seen[string(chain)] = notAfter
		}
		if !notAfter.IsZero() && (first.IsZero() || notAfter.Before(first)) {
			first = notAfter
		}
	}
	e.parsed = seen
	return first
}

// leafNotAfter is the expiry of the first certificate of a PEM chain (zero
// if it cannot be read).
func leafNotAfter(chainPEM []byte) time.Time {
	block, _ := pem.Decode(chainPEM)
	if block == nil {
		return time.Time{}
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return leaf.NotAfter
}
