package envoysim

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// server is go-control-plane's own ADS server over a snapshot cache: an
// xDS server no one here wrote, to test the simulated Envoy against. Each
// call of connect returns a connection for one Envoy: gRPC-Go's (one
// channel, shared), or with lean one of this package's own (transport.go).
func server(t *testing.T, lean bool) (cache cachev3.SnapshotCache, connect func() grpc.ClientConnInterface) {
	t.Helper()
	cache = cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, cache, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	if lean {
		return cache, func() grpc.ClientConnInterface {
			conn, err := Dial(ctx, lis.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			return conn
		}
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cache, func() grpc.ClientConnInterface { return conn }
}

// transports names the two connections a simulated Envoy can run on.
var transports = map[string]bool{"grpc-go": false, "lean": true}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion: corev3.ApiVersion_V3}
}

func sdsTLS() *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "default", SdsConfig: ads()}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ROOTCA", SdsConfig: ads()}},
	}
}

// mesh is one cluster with mTLS (SDS), its endpoints, a listener with RDS
// and a TLS filter chain, its route configuration, and the secrets unless
// withoutSecrets.
func mesh(t *testing.T, version string, withoutSecrets bool) *cachev3.Snapshot {
	t.Helper()
	cluster := &clusterv3.Cluster{
		Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: "c-eds"},
		TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
			TypedConfig: mustAny(t, &tlsv3.UpstreamTlsContext{CommonTlsContext: sdsTLS()})}},
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: "c-eds"}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: "r"}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	listener := &listenerv3.Listener{
		Name: "l",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15001}}}},
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{Name: "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}}},
			TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
				TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: sdsTLS()})}},
		}},
	}
	route := &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}},
		}},
	}}}
	res := map[string][]types.Resource{
		resourcev3.ClusterType: {cluster}, resourcev3.EndpointType: {cla},
		resourcev3.ListenerType: {listener}, resourcev3.RouteType: {route},
	}
	if !withoutSecrets {
		res[resourcev3.SecretType] = []types.Resource{
			&tlsv3.Secret{Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}},
			&tlsv3.Secret{Name: "ROOTCA", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}},
		}
	}
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollowsSDS: both protocols subscribe to the secrets clusters and
// listeners use, and are complete only once they have them; a shared
// Decoder decodes each content once.
func TestFollowsSDS(t *testing.T) {
	for _, delta := range []bool{false, true} {
		for transport, lean := range transports {
			name := map[bool]string{false: "sotw", true: "delta"}[delta] + "/" + transport
			t.Run(name, func(t *testing.T) { followsSDS(t, delta, lean) })
		}
	}
}

func followsSDS(t *testing.T, delta, lean bool) {
	cache, connect := server(t, lean)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := cache.SetSnapshot(ctx, "a", mesh(t, "1", true)); err != nil {
		t.Fatal(err)
	}
	if err := cache.SetSnapshot(ctx, "b", mesh(t, "1", false)); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	var (
		mu      sync.Mutex
		updates []Update
	)
	a := New(Config{NodeID: "a", Delta: delta, Decoder: dec})
	b := New(Config{NodeID: "b", Delta: delta, Decoder: dec, OnUpdate: func(u Update) {
		mu.Lock()
		updates = append(updates, u)
		mu.Unlock()
	}})
	for _, e := range []*Envoy{a, b} {
		conn := connect()
		go func() { _ = e.Run(ctx, conn) }()
	}
	waitFor(t, "b complete", b.IsComplete)
	// (Its clusters alone make it ask for both secrets: wait for
	// its listeners too, whose secret is checked below.)
	waitFor(t, "a to ask for secrets", func() bool {
		return len(a.subscribed(resourcev3.SecretType)) == 2 && len(a.Names(resourcev3.ListenerType)) > 0
	})
	ok, missing := a.Complete()
	if ok || !strings.Contains(strings.Join(missing, ";"), "secret default of cluster c") ||
		!strings.Contains(strings.Join(missing, ";"), "secret ROOTCA of listener l") {
		t.Fatalf("a has no secrets, yet Complete() = %v, %v", ok, missing)
	}
	if err := cache.SetSnapshot(ctx, "a", mesh(t, "2", false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a complete", a.IsComplete)
	if got := b.Names(resourcev3.SecretType); len(got) != 2 {
		t.Fatalf("b has secrets %v", got)
	}
	st := b.Stats()
	if st.Responses < 5 || st.NACKs != 0 || st.Bytes == 0 {
		t.Fatalf("b stats %+v", st)
	}
	seen := map[string]bool{}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range updates {
		seen[u.TypeURL] = true
		if u.Acked.Before(u.At) || u.Bytes == 0 {
			t.Fatalf("update %+v", u)
		}
	}
	if len(seen) != 5 {
		t.Fatalf("b got types %v, want all five", seen)
	}
	if ds := dec.Stats(); ds.Reused == 0 || ds.Decoded == 0 {
		t.Fatalf("decoder %+v: the two Envoys share identical resources", ds)
	}
	if p := append(a.Problems(), b.Problems()...); len(p) > 0 {
		t.Fatal(p)
	}
}

// TestNACK: a resource that fails Envoy's validation is NACKed, counted
// and reported, and the last good one kept.
func TestNACK(t *testing.T) {
	for transport, lean := range transports {
		t.Run(transport, func(t *testing.T) { nack(t, lean) })
	}
}

func nack(t *testing.T, lean bool) {
	cache, connect := server(t, lean)
	conn := connect()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := cache.SetSnapshot(ctx, "a", mesh(t, "1", false)); err != nil {
		t.Fatal(err)
	}
	e := New(Config{NodeID: "a"})
	go func() { _ = e.Run(ctx, conn) }()
	waitFor(t, "complete", e.IsComplete)
	bad := mesh(t, "2", false)
	// A route with no action: Envoy's validation rejects it.
	rc := bad.GetResources(resourcev3.RouteType)["r"].(*routev3.RouteConfiguration)
	rc.VirtualHosts[0].Routes[0].Action = nil
	if err := cache.SetSnapshot(ctx, "a", bad); err != nil {
		t.Fatal(err)
	}
	// go-control-plane's cache answers a NACK with the same snapshot again
	// (minimesh's server does not): there may be several.
	waitFor(t, "NACK", func() bool { return e.Stats().NACKs >= 1 })
	p := e.Problems()
	if len(p) == 0 || !strings.Contains(p[0], "Route.Action: value is required") {
		t.Fatalf("problems %v", p)
	}
	if !e.IsComplete() || e.Resource(resourcev3.RouteType, "r").(*routev3.RouteConfiguration).VirtualHosts[0].Routes[0].Action == nil {
		t.Fatal("the NACKed route configuration replaced the good one")
	}
}
