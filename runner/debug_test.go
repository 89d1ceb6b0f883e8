package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/minimesh/minimesh/internal/envoysim"
	"github.com/minimesh/minimesh/internal/testlog"
	"github.com/minimesh/minimesh/xds"
)

// debugRig is a real control plane on a copy of examples/canary, with a CA
// (so sidecars get workload keys), plaintext xDS, and one simulated Envoy
// sidecar of my-app-v1 connected.
type debugRig struct {
	cp    *ControlPlane
	dir   string
	http  *httptest.Server
	envoy *envoysim.Envoy
}

const sidecar = "my-app-v1.default"

func startDebugRig(t *testing.T, reg prometheus.Registerer) *debugRig {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "examples", "canary"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := Start(ctx, Config{
		ConfigDir: dir, XDSAddress: "127.0.0.1:0", InsecureXDS: true, CADir: t.TempDir(),
		Registry: reg, Log: testlog.New(t), HoldOff: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := httptest.NewServer(cp.DebugHandler())
	conn, err := grpc.NewClient(cp.Addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e := envoysim.New(envoysim.Config{NodeID: sidecar})
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		if err := e.Run(ctx, conn); err != nil && ctx.Err() == nil {
			t.Errorf("simulated Envoy: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-runDone
		conn.Close()
		srv.Close()
		cp.Stop()
	})
	rig := &debugRig{cp: cp, dir: dir, http: srv, envoy: e}
	rig.waitSynced(t, "")
	return rig
}

// get fetches a debug path and returns its status and body.
func (rig *debugRig) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(rig.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (rig *debugRig) syncz(t *testing.T) []ProxySync {
	t.Helper()
	code, body := rig.get(t, "/debug/syncz")
	if code != http.StatusOK {
		t.Fatalf("syncz: %d %s", code, body)
	}
	var out []ProxySync
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("syncz: %v\n%s", err, body)
	}
	return out
}

// waitSynced waits until the sidecar has ACKed clusters, endpoints,
// listeners and routes, with routes at a version other than notRoutes.
func (rig *debugRig) waitSynced(t *testing.T, notRoutes string) ProxySync {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var last []ProxySync
		if ok, _ := rig.envoy.Complete(); ok {
			last = rig.syncz(t)
			if len(last) == 1 {
				p := last[0]
				synced := true
				for _, typ := range []string{"Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration"} {
					ts := p.Types[typ]
					synced = synced && ts.Status == SyncSynced && ts.SentVersion == ts.PublishedVersion
				}
				if synced && p.Types["RouteConfiguration"].AckedVersion != notRoutes {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sidecar did not sync within 5s: %+v", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDebugSyncz(t *testing.T) {
	rig := startDebugRig(t, nil)
	p := rig.syncz(t)[0]
	if p.Proxy != sidecar || p.Flavor != "envoy" || p.UserAgent != "envoy" || p.Streams != 1 {
		t.Fatalf("proxy %+v", p)
	}
	if len(p.Types) != 5 {
		t.Fatalf("%d types, want 5: %v", len(p.Types), p.Types)
	}
	snap := rig.cp.Runner.cache.Get(sidecar)
	for name, ts := range p.Types {
		if !strings.HasSuffix(ts.TypeURL, "."+name) {
			t.Errorf("%s: type URL %s", name, ts.TypeURL)
		}
		if ts.PublishedVersion != snap.GetVersion(ts.TypeURL) {
			t.Errorf("%s: published version %s, the cache has %s", name, ts.PublishedVersion, snap.GetVersion(ts.TypeURL))
		}
		switch ts.Status {
		case SyncSynced:
			if !ts.InSync || ts.AckedVersion != ts.SentVersion || ts.SentNonce == "" || ts.Updated == nil {
				t.Errorf("%s: %+v", name, ts)
			}
		case SyncNotSent: // the simulated Envoy may not ask for SDS
			if name != "Secret" || ts.InSync || ts.SentVersion != "" {
				t.Errorf("%s: %+v", name, ts)
			}
		default:
			t.Errorf("%s: %+v", name, ts)
		}
	}

	// A weight edit: the routes move to a new version, SYNCED again.
	before := p.Types["RouteConfiguration"].AckedVersion
	rig.setWeights(t, "50", "50")
	after := rig.waitSynced(t, before).Types["RouteConfiguration"]
	if after.AckedVersion == before || after.LastNACK != nil {
		t.Fatalf("routes after the edit: %+v", after)
	}
}

// setWeights rewrites the canary VirtualService's weights.
func (rig *debugRig) setWeights(t *testing.T, v1, v2 string) {
	t.Helper()
	path := filepath.Join(rig.dir, "virtual-service.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "weight: 90", "weight: "+v1, 1)
	s = strings.Replace(s, "weight: 10", "weight: "+v2, 1)
	if s == string(data) {
		t.Fatal("weights not found")
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSyncStatus(t *testing.T) {
	for _, c := range []struct {
		st   xds.TypeStatus
		want string
	}{
		{xds.TypeStatus{SentVersion: "b", SentNonce: "2", AckedVersion: "a"}, SyncStale},
		{xds.TypeStatus{SentVersion: "b", SentNonce: "2", AckedVersion: "a", LastNACK: &xds.NACK{Version: "b"}}, SyncNACKed},
		{xds.TypeStatus{SentVersion: "b", SentNonce: "2", AckedVersion: "b"}, SyncSynced},
		{xds.TypeStatus{}, SyncNotSent},
	} {
		if got := syncStatus(&c.st); got != c.want {
			t.Errorf("%+v: %s, want %s", c.st, got, c.want)
		}
	}
}

// TestConfigDumpRedactsKeys: the sidecar's snapshot holds its workload
// certificate and private key; the config dump shows the certificate and
// every other resource, never the key, and the published snapshot keeps it.
func TestConfigDumpRedactsKeys(t *testing.T) {
	rig := startDebugRig(t, nil)
	secret, ok := rig.cp.Runner.cache.Get(sidecar).GetResources(resourcev3.SecretType)["default"].(*tlsv3.Secret)
	if !ok {
		t.Fatal("the sidecar has no workload secret")
	}
	keyPEM := bytes.Clone(secret.GetTlsCertificate().GetPrivateKey().GetInlineBytes())
	block, _ := pem.Decode(keyPEM)
	if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		t.Fatalf("the workload secret holds no PEM private key: %q", keyPEM)
	}

	code, body := rig.get(t, "/debug/config_dump?proxy="+sidecar)
	if code != http.StatusOK {
		t.Fatalf("config_dump: %d %s", code, body)
	}
	// The key in any form: PEM, its base64 body (as a whole and by line),
	// the PEM as protojson base64 bytes, the raw DER in base64.
	forms := map[string]string{
		"PEM header":    "PRIVATE KEY",
		"PEM as bytes":  base64.StdEncoding.EncodeToString(keyPEM),
		"DER in base64": base64.StdEncoding.EncodeToString(block.Bytes),
	}
	for i, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			forms["PEM line "+string(rune('0'+i))] = line
		}
	}
	for what, s := range forms {
		if bytes.Contains(body, []byte(s)) {
			t.Fatalf("config_dump contains the private key (%s)", what)
		}
	}
	if !bytes.Contains(body, []byte(Redacted)) {
		t.Fatal("config_dump shows no redaction marker")
	}
	if got := secret.GetTlsCertificate().GetPrivateKey().GetInlineBytes(); !bytes.Equal(got, keyPEM) {
		t.Fatal("config_dump changed the published secret")
	}

	var dump ConfigDump
	if err := json.Unmarshal(body, &dump); err != nil {
		t.Fatal(err)
	}
	if dump.Proxy != sidecar || len(dump.Types) != 5 {
		t.Fatalf("dump of %s with %d types", dump.Proxy, len(dump.Types))
	}
	snap := rig.cp.Runner.cache.Get(sidecar)
	for _, td := range dump.Types {
		if td.Version != snap.GetVersion(td.TypeURL) || len(td.Resources) != len(snap.GetResources(td.TypeURL)) {
			t.Errorf("%s: version %s with %d resources; snapshot %s with %d", td.TypeURL, td.Version, len(td.Resources),
				snap.GetVersion(td.TypeURL), len(snap.GetResources(td.TypeURL)))
		}
		for _, rd := range td.Resources {
			if rd.Error != "" || rd.Version != snap.GetVersionMap(td.TypeURL)[rd.Name] {
				t.Errorf("%s %s: version %s, error %q", td.TypeURL, rd.Name, rd.Version, rd.Error)
			}
			if td.TypeURL != resourcev3.SecretType {
				// Everything but secrets is shown exactly as published.
				m := proto.Clone(snap.GetResources(td.TypeURL)[rd.Name])
				proto.Reset(m)
				if err := protojson.Unmarshal(rd.Resource, m); err != nil {
					t.Fatalf("%s: %v", rd.Name, err)
				}
				if !proto.Equal(m, snap.GetResources(td.TypeURL)[rd.Name]) {
					t.Errorf("%s %s: the dump differs from the published resource", td.TypeURL, rd.Name)
				}
			}
		}
	}
	// The certificate itself is public and stays readable.
	var certSeen bool
	for _, td := range dump.Types {
		for _, rd := range td.Resources {
			if td.TypeURL == resourcev3.SecretType && rd.Name == "default" {
				var s tlsv3.Secret
				if err := protojson.Unmarshal(rd.Resource, &s); err != nil {
					t.Fatal(err)
				}
				certSeen = bytes.Equal(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes(),
					secret.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
				if s.GetTlsCertificate().GetPrivateKey().GetInlineString() != Redacted {
					t.Errorf("private key shown as %v", s.GetTlsCertificate().GetPrivateKey())
				}
			}
		}
	}
	if !certSeen {
		t.Error("the workload certificate chain is not in the dump")
	}

	for path, want := range map[string]int{
		"/debug/config_dump?proxy=nobody.default": http.StatusNotFound,
		"/debug/config_dump":                      http.StatusBadRequest,
	} {
		code, body := rig.get(t, path)
		if code != want || !strings.Contains(string(body), "proxy") {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
}

// TestRedactNested: keys inline in a listener's TLS context (inside an
// Any), generic secrets and session ticket keys are redacted too.
func TestRedactNested(t *testing.T) {
	const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIsecretsecretsecret\n-----END EC PRIVATE KEY-----\n"
	ctxTLS := &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificates: []*tlsv3.TlsCertificate{{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "cert"}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(key)}},
		}}},
		SessionTicketKeysType: &tlsv3.DownstreamTlsContext_SessionTicketKeys{SessionTicketKeys: &tlsv3.TlsSessionTicketKeys{
			Keys: []*corev3.DataSource{{Specifier: &corev3.DataSource_InlineString{InlineString: "ticketsecret"}}},
		}},
	}
	typed, err := anypb.New(ctxTLS)
	if err != nil {
		t.Fatal(err)
	}
	l := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{
		TransportSocket: &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed}},
	}}}
	generic := &tlsv3.Secret{Name: "g", Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{
		Secret:  &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "genericsecret"}},
		Secrets: map[string]*corev3.DataSource{"k": {Specifier: &corev3.DataSource_InlineString{InlineString: "mapsecret"}}},
	}}}
	for _, m := range []proto.Message{l, generic} {
		orig := proto.Clone(m)
		c := proto.Clone(m)
		if !redact(c.ProtoReflect()) {
			t.Fatalf("%T: nothing redacted", m)
		}
		out, err := protojson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"PRIVATE KEY", base64.StdEncoding.EncodeToString([]byte(key)), "secretsecret", "ticketsecret",
			"genericsecret", "mapsecret"} {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("%T: %q left in %s", m, s, out)
			}
		}
		if !proto.Equal(m, orig) {
			t.Errorf("%T: the original was changed", m)
		}
	}
}

func TestDebugPprof(t *testing.T) {
	h := newDebugHandler(nil, nil)
	for path, want := range map[string]string{
		"/debug/pprof/":        "goroutine",
		"/debug/pprof/cmdline": "",
		"/debug/":              "/debug/syncz",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %.200s", path, rec.Code, rec.Body.String())
		}
	}
}

// TestMetrics: build info, config errors, certificate expiry, and a weight
// edit's convergence (change -> ACK) and push -> ACK times are exported.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	rig := startDebugRig(t, reg)
	before := rig.syncz(t)[0].Types["RouteConfiguration"].AckedVersion
	rig.setWeights(t, "50", "50")
	rig.waitSynced(t, before)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	metric := func(name string, labels ...string) *dto.Metric {
		t.Helper()
		f := byName[name]
		if f == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			return m
		}
		t.Fatalf("no %s%v", name, labels)
		return nil
	}
	if m := byName["minimesh_build_info"].GetMetric()[0]; m.GetGauge().GetValue() != 1 || len(m.GetLabel()) != 2 {
		t.Errorf("build info %v", m)
	}
	if v := metric("minimesh_config_errors_total").GetCounter().GetValue(); v != 0 {
		t.Errorf("config errors %v", v)
	}
	if v := metric("minimesh_mesh_updates_total").GetCounter().GetValue(); v < 2 {
		t.Errorf("mesh updates %v, want 2 (load and edit)", v)
	}
	now := float64(time.Now().Unix())
	for _, name := range []string{"minimesh_ca_root_expiry_timestamp_seconds", "minimesh_workload_cert_expiry_timestamp_seconds"} {
		if v := metric(name).GetGauge().GetValue(); v < now || v > now+20*365*24*3600 {
			t.Errorf("%s = %v, now %v", name, v, now)
		}
	}
	h := metric("minimesh_xds_convergence_seconds", "type", "RouteConfiguration").GetHistogram()
	if h.GetSampleCount() < 1 || h.GetSampleSum() <= 0 || h.GetSampleSum() > 5 {
		t.Errorf("convergence of the routes: %d samples, sum %vs", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, typ := range []string{"Cluster", "Listener"} {
		if f := byName["minimesh_xds_convergence_seconds"]; f != nil {
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == typ && m.GetHistogram().GetSampleCount() > 0 {
					t.Errorf("a weight edit was counted as a %s change", typ)
				}
			}
		}
	}
	if n := metric("minimesh_xds_push_ack_duration_seconds", "type", "Cluster").GetHistogram().GetSampleCount(); n < 1 {
		t.Errorf("push -> ACK of clusters: %d samples", n)
	}
}
