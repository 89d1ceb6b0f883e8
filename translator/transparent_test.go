package translator

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/mesh"
)

// buildSnapshot decodes and builds Istio YAML, failing on any error.
func buildSnapshot(t testing.TB, yaml string) *mesh.Snapshot {
	t.Helper()
	objs, diags, err := mesh.Decode("test.yaml", []byte(yaml), "default")
	if err != nil {
		t.Fatal(err)
	}
	snap, more := mesh.Build(objs, mesh.Options{})
	for _, d := range append(diags, more...) {
		if d.Severity == mesh.SeverityError {
			t.Fatalf("input has an error: %v", d)
		}
	}
	return snap
}

// envoyNode is the node of an Envoy sidecar with the given
// INTERCEPTION_MODE ("" for none).
func envoyNode(id, interception string) *corev3.Node {
	node := &corev3.Node{Id: id, UserAgentName: "envoy"}
	if interception != "" {
		node.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			"INTERCEPTION_MODE": structpb.NewStringValue(interception),
		}}
	}
	return node
}

// translateChecked translates one proxy and runs the cache's checks.
func translateChecked(t *testing.T, ix Index, p Proxy) *Resources {
	t.Helper()
	p.Certificate = &Certificate{ChainPEM: []byte("chain"), KeyPEM: []byte("key")}
	p.TrustBundlePEM = []byte("roots")
	res, err := ix.Translate(p)
	if err != nil {
		t.Fatalf("translate %s: %v", p.ID, err)
	}
	if err := cache.Check(res.ByType()); err != nil {
		t.Fatalf("proxy %s: the cache refuses the snapshot: %v", p.ID, err)
	}
	return res
}

func listenerNames(res *Resources) []string {
	var out []string
	for _, l := range res.Listeners {
		out = append(out, l.GetName())
	}
	return out
}

func findListener(t *testing.T, res *Resources, name string) *listenerv3.Listener {
	t.Helper()
	for _, l := range res.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	t.Fatalf("no listener %q; have %q", name, listenerNames(res))
	return nil
}

func findRoutes(t *testing.T, res *Resources, name string) *routev3.RouteConfiguration {
	t.Helper()
	for _, rc := range res.Routes {
		if rc.GetName() == name {
			return rc
		}
	}
	t.Fatalf("no route configuration %q", name)
	return nil
}

// tcpProxyCluster is the cluster of a chain's TCP proxy, "" if it has none.
func tcpProxyCluster(t *testing.T, chain *listenerv3.FilterChain) string {
	t.Helper()
	for _, f := range chain.GetFilters() {
		tp := &tcpproxyv3.TcpProxy{}
		if f.GetTypedConfig().MessageIs(tp) {
			if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
				t.Fatal(err)
			}
			return tp.GetCluster()
		}
	}
	return ""
}

func TestCaptureOf(t *testing.T) {
	for _, tt := range []struct {
		interception string
		want         CaptureMode
	}{
		{"", CaptureExplicit},
		{"NONE", CaptureExplicit},
		{"REDIRECT", CaptureTransparent},
		{"TPROXY", CaptureTransparent},
		{"redirect", CaptureTransparent},
		{"SOMETHING", CaptureExplicit},
	} {
		if got := CaptureOf(envoyNode("a.default", tt.interception)); got != tt.want {
			t.Errorf("INTERCEPTION_MODE %q: got %v, want %v", tt.interception, got, tt.want)
		}
		if got := NewProxy(envoyNode("a.default", tt.interception), nil, "default").Capture; got != tt.want {
			t.Errorf("NewProxy, INTERCEPTION_MODE %q: got %v, want %v", tt.interception, got, tt.want)
		}
	}
	grpc := envoyNode("a.default", "REDIRECT")
	grpc.UserAgentName = "gRPC Go"
	if got := NewProxy(grpc, nil, "default").Capture; got != CaptureExplicit {
		t.Errorf("a gRPC client got capture %v, want explicit (gRPC has no capture modes)", got)
	}
}

// twoServices: reviews (HTTP 9080, ClusterIP 10.96.0.20) backed by a
// workload, and db (TCP 5432, ClusterIP 10.96.0.30).
const twoServices = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.20]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.default.svc.cluster.local]
  addresses: [10.96.0.30]
  location: MESH_INTERNAL
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.21}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-0}
spec: {address: 10.0.0.11, labels: {app: reviews}, serviceAccount: reviews}
`

func TestTransparentListeners(t *testing.T) {
	ix := NewIndex(buildSnapshot(t, twoServices), Options{})
	res := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-0.default", "REDIRECT"), "default"))
	want := []string{"0.0.0.0_9080", "10.96.0.30_5432", "virtualInbound", "virtualOutbound"}
	if diff := cmp.Diff(want, listenerNames(res)); diff != "" {
		t.Errorf("listeners (-want +got):\n%s", diff)
	}

	vo := findListener(t, res, "virtualOutbound")
	if addr := vo.GetAddress().GetSocketAddress(); addr.GetAddress() != "0.0.0.0" || addr.GetPortValue() != 15001 {
		t.Errorf("virtualOutbound listens on %s:%d, want 0.0.0.0:15001", addr.GetAddress(), addr.GetPortValue())
	}
	if !vo.GetUseOriginalDst().GetValue() {
		t.Error("virtualOutbound: use_original_dst is not set")
	}
	if got := tcpProxyCluster(t, vo.GetDefaultFilterChain()); got != "PassthroughCluster" {
		t.Errorf("virtualOutbound: unknown destinations go to %q, want PassthroughCluster", got)
	}

	tcp := findListener(t, res, "10.96.0.30_5432")
	if tcp.GetBindToPort() == nil || tcp.GetBindToPort().GetValue() {
		t.Error("10.96.0.30_5432 binds its port; only virtualOutbound may")
	}
	if got := tcpProxyCluster(t, tcp.GetFilterChains()[0]); got != "outbound|5432||db.default.svc.cluster.local" {
		t.Errorf("10.96.0.30_5432 goes to %q", got)
	}
	if http := findListener(t, res, "0.0.0.0_9080"); http.GetBindToPort().GetValue() {
		t.Error("0.0.0.0_9080 binds its port")
	}

	var clusters []string
	for _, c := range res.Clusters {
		clusters = append(clusters, c.GetName())
	}
	for _, name := range []string{"PassthroughCluster", "InboundPassthroughCluster", "inbound|8080||"} {
		if !strings.Contains(strings.Join(clusters, " "), name) {
			t.Errorf("no cluster %q; have %q", name, clusters)
		}
	}
}

// TestTransparentDomains checks the route configuration of an HTTP port:
// the service's names and ClusterIP, with and without the port, and
// allow_any last.
func TestTransparentDomains(t *testing.T) {
	ix := NewIndex(buildSnapshot(t, twoServices), Options{})
	res := translateChecked(t, ix, ix.NewProxy(envoyNode("client.default", "REDIRECT"), "default"))
	rc := findRoutes(t, res, "9080")
	if len(rc.GetVirtualHosts()) != 2 {
		t.Fatalf("route configuration 9080 has %d virtual hosts, want reviews and allow_any", len(rc.GetVirtualHosts()))
	}
	reviews := rc.GetVirtualHosts()[0]
	if reviews.GetName() != "reviews.default.svc.cluster.local:9080" {
		t.Errorf("first virtual host %q", reviews.GetName())
	}
	want := []string{
		"reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080",
		"reviews.default.svc", "reviews.default.svc:9080",
		"reviews.default", "reviews.default:9080",
		"reviews", "reviews:9080",
		"10.96.0.20", "10.96.0.20:9080",
	}
	if diff := cmp.Diff(want, reviews.GetDomains()); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
	last := rc.GetVirtualHosts()[1]
	if last.GetName() != "allow_any" || !cmp.Equal(last.GetDomains(), []string{"*"}) ||
		last.GetRoutes()[0].GetRoute().GetCluster() != "PassthroughCluster" {
		t.Errorf("last virtual host is not allow_any to PassthroughCluster: %v", last)
	}

	// A proxy in another namespace does not get the bare short name.
	other := translateChecked(t, ix, ix.NewProxy(envoyNode("client.other", "REDIRECT"), "other"))
	for _, d := range findRoutes(t, other, "9080").GetVirtualHosts()[0].GetDomains() {
		if d == "reviews" || d == "reviews:9080" {
			t.Errorf("a proxy in namespace other got domain %q", d)
		}
	}
}

// TestTransparentSharedPorts: services that share a port or an address
// must not produce duplicate listeners, filter chains or domains (Envoy
// rejects them; the cache's checks too).
func TestTransparentSharedPorts(t *testing.T) {
	snap := buildSnapshot(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a}
spec:
  hosts: [a.default.svc.cluster.local]
  addresses: [10.96.0.1, 10.96.0.9]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 6379, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b}
spec:
  hosts: [b.default.svc.cluster.local]
  addresses: [10.96.0.2, 10.96.0.9, 10.8.0.0/16]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 6379, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c}
spec:
  hosts: [c.example.com]
  addresses: [10.8.0.0/16]
  ports: [{number: 6379, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.8.0.5}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: d}
spec:
  hosts: [d.default.svc.cluster.local]
  addresses: [10.96.0.4]
  ports: [{number: 15001, name: http, protocol: HTTP}, {number: 15006, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.4}]
`)
	ix := NewIndex(snap, Options{})
	res := translateChecked(t, ix, ix.NewProxy(envoyNode("client.default", "REDIRECT"), "default"))

	// No listener on Envoy's capture ports (d): 0.0.0.0_15001 would clash
	// with virtualOutbound.
	want := []string{"0.0.0.0_6379", "0.0.0.0_80", "10.96.0.1_6379", "10.96.0.2_6379", "10.96.0.9_6379", "virtualInbound", "virtualOutbound"}
	if diff := cmp.Diff(want, listenerNames(res)); diff != "" {
		t.Errorf("listeners (-want +got):\n%s", diff)
	}
	// The shared address goes to the first service by hostname.
	if got := tcpProxyCluster(t, findListener(t, res, "10.96.0.9_6379").GetFilterChains()[0]); got != "outbound|6379||a.default.svc.cluster.local" {
		t.Errorf("10.96.0.9_6379 goes to %q, want a's cluster", got)
	}
	// The range, claimed by b and c, is one chain (b's); the rest passes through.
	chains := findListener(t, res, "0.0.0.0_6379").GetFilterChains()
	if len(chains) != 2 {
		t.Fatalf("0.0.0.0_6379 has %d chains, want the range and the rest", len(chains))
	}
	if got := tcpProxyCluster(t, chains[0]); got != "outbound|6379||b.default.svc.cluster.local" {
		t.Errorf("10.8.0.0/16 goes to %q, want b's cluster", got)
	}
	if r := chains[0].GetFilterChainMatch().GetPrefixRanges(); len(r) != 1 || r[0].GetAddressPrefix() != "10.8.0.0" || r[0].GetPrefixLen().GetValue() != 16 {
		t.Errorf("range chain matches %v", r)
	}
	if got := tcpProxyCluster(t, chains[1]); got != "PassthroughCluster" || chains[1].GetFilterChainMatch() != nil {
		t.Errorf("the last chain of 0.0.0.0_6379 goes to %q with match %v, want PassthroughCluster for all", got, chains[1].GetFilterChainMatch())
	}

	// Port 80: one virtual host each; 10.96.0.9 belongs to a only.
	rc := findRoutes(t, res, "80")
	var names []string
	owner := map[string]string{}
	for _, vh := range rc.GetVirtualHosts() {
		names = append(names, vh.GetName())
		for _, d := range vh.GetDomains() {
			owner[d] = vh.GetName()
		}
	}
	if diff := cmp.Diff([]string{"a.default.svc.cluster.local:80", "b.default.svc.cluster.local:80", "allow_any"}, names); diff != "" {
		t.Errorf("virtual hosts (-want +got):\n%s", diff)
	}
	if owner["10.96.0.9"] != "a.default.svc.cluster.local:80" || owner["10.96.0.2:80"] != "b.default.svc.cluster.local:80" {
		t.Errorf("address domains: 10.96.0.9 in %q, 10.96.0.2:80 in %q", owner["10.96.0.9"], owner["10.96.0.2:80"])
	}
	if _, ok := owner["10.8.0.0/16"]; ok {
		t.Error("a range became a domain")
	}
}

// TestTransparentInboundModes checks virtualInbound's chains under each
// PeerAuthentication mode: one chain per mode the port accepts, matched by
// destination port (and, under PERMISSIVE, by transport protocol), then the
// passthrough chain.
func TestTransparentInboundModes(t *testing.T) {
	for _, tt := range []struct {
		mode      string
		chains    []string
		inspector bool
	}{
		{"STRICT", []string{"inbound|8080|mtls 8080 ", "inbound-passthrough|mtls 0 "}, false},
		{"PERMISSIVE", []string{"inbound|8080|mtls 8080 tls", "inbound|8080|plaintext 8080 raw_buffer", "inbound-passthrough|plaintext 0 "}, true},
		{"DISABLE", []string{"inbound|8080|plaintext 8080 ", "inbound-passthrough|plaintext 0 "}, false},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			ix := NewIndex(buildSnapshot(t, twoServices+`
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: `+tt.mode+`}
`), Options{})
			res := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-0.default", "REDIRECT"), "default"))
			vi := findListener(t, res, "virtualInbound")
			if addr := vi.GetAddress().GetSocketAddress(); addr.GetAddress() != "0.0.0.0" || addr.GetPortValue() != 15006 {
				t.Errorf("virtualInbound listens on %s:%d, want 0.0.0.0:15006", addr.GetAddress(), addr.GetPortValue())
			}
			var got []string
			for _, c := range vi.GetFilterChains() {
				m := c.GetFilterChainMatch()
				got = append(got, c.GetName()+" "+itoa(m.GetDestinationPort().GetValue())+" "+m.GetTransportProtocol())
				if mtls := c.GetTransportSocket() != nil; mtls != strings.Contains(c.GetName(), "|mtls") {
					t.Errorf("chain %s: transport socket %v", c.GetName(), mtls)
				}
			}
			if diff := cmp.Diff(tt.chains, got); diff != "" {
				t.Errorf("chains (-want +got):\n%s", diff)
			}
			var filters []string
			for _, f := range vi.GetListenerFilters() {
				filters = append(filters, f.GetName())
			}
			want := []string{"envoy.filters.listener.original_dst"}
			if tt.inspector {
				want = append(want, "envoy.filters.listener.tls_inspector")
			}
			if diff := cmp.Diff(want, filters); diff != "" {
				t.Errorf("listener filters (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExplicitUnchanged: without INTERCEPTION_MODE (or with NONE) a sidecar
// gets explicit mode's listeners and none of transparent mode's.
func TestExplicitUnchanged(t *testing.T) {
	ix := NewIndex(buildSnapshot(t, twoServices), Options{})
	for _, interception := range []string{"", "NONE"} {
		res := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-0.default", interception), "default"))
		want := []string{"10.0.0.11_8080", "127.0.0.1_15001"}
		if diff := cmp.Diff(want, listenerNames(res)); diff != "" {
			t.Errorf("INTERCEPTION_MODE %q: listeners (-want +got):\n%s", interception, diff)
		}
		for _, c := range res.Clusters {
			if strings.Contains(c.GetName(), "Passthrough") {
				t.Errorf("INTERCEPTION_MODE %q: explicit mode got cluster %s", interception, c.GetName())
			}
		}
	}
}

// TestTransparentShared: transparent proxies share the outbound listeners,
// and, within a namespace, the route configurations.
func TestTransparentShared(t *testing.T) {
	ix := NewIndex(buildSnapshot(t, twoServices), Options{})
	a := translateChecked(t, ix, ix.NewProxy(envoyNode("reviews-0.default", "REDIRECT"), "default"))
	b := translateChecked(t, ix, ix.NewProxy(envoyNode("client.default", "REDIRECT"), "default"))
	c := translateChecked(t, ix, ix.NewProxy(envoyNode("client.other", "REDIRECT"), "other"))
	if findListener(t, a, "0.0.0.0_9080") != findListener(t, c, "0.0.0.0_9080") {
		t.Error("the outbound listeners are built per proxy, not shared")
	}
	if findRoutes(t, a, "9080") != findRoutes(t, b, "9080") {
		t.Error("route configurations are not shared within a namespace")
	}
	if findRoutes(t, a, "9080") == findRoutes(t, c, "9080") {
		t.Error("proxies of different namespaces share route configurations (short names differ)")
	}
	if findListener(t, a, "virtualInbound") == findListener(t, b, "virtualInbound") {
		t.Error("virtualInbound, which depends on the workload, is shared")
	}
}
