package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/minimesh/minimesh/internal/testlog"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/minimesh/minimesh/cache"
)

// fakeHooks publishes a fixed set of clusters for every node that connects.
type fakeHooks struct {
	t     *testing.T
	cache *cache.Cache

	mu        sync.Mutex
	clusters  []string
	connected []string
	gone      []string
	listeners map[string][]string
}

func (h *fakeHooks) snapshot() *cache.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	var res []types.Resource
	for _, name := range h.clusters {
		res = append(res, &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			ConnectTimeout:       durationpb.New(time.Second),
		})
	}
	s, err := cache.NewSnapshot(map[string][]types.Resource{resourcev3.ClusterType: res})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *fakeHooks) Authorize(node *corev3.Node, p Peer) error {
	if node.GetId() == "intruder.default" {
		return errors.New("not you")
	}
	return nil
}

func (h *fakeHooks) Connect(node *corev3.Node) error {
	h.mu.Lock()
	h.connected = append(h.connected, node.GetId())
	h.mu.Unlock()
	_, err := h.cache.Publish(context.Background(), node.GetId(), h.snapshot())
	return err
}

func (h *fakeHooks) Listeners(node *corev3.Node, names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.listeners[node.GetId()] = names
}

func (h *fakeHooks) Disconnect(nodeID string) {
	h.mu.Lock()
	h.gone = append(h.gone, nodeID)
	h.mu.Unlock()
	h.cache.Forget(nodeID)
}

// setClusters publishes a new cluster list to a node.
func (h *fakeHooks) setClusters(node string, names ...string) {
	h.mu.Lock()
	h.clusters = names
	h.mu.Unlock()
	if _, err := h.cache.Publish(context.Background(), node, h.snapshot()); err != nil {
		h.t.Fatal(err)
	}
}

// startServer runs an xDS server on an in-memory listener and returns a
// client connection to it.
func startServer(t *testing.T, clusters ...string) (*Server, *fakeHooks, *grpc.ClientConn) {
	t.Helper()
	return startServerWith(t, Options{}, clusters...)
}

// startServerWith is startServer with options.
func startServerWith(t *testing.T, o Options, clusters ...string) (*Server, *fakeHooks, *grpc.ClientConn) {
	t.Helper()
	c := cache.New(nil)
	hooks := &fakeHooks{t: t, cache: c, clusters: clusters, listeners: map[string][]string{}}
	srv := NewServer(c, hooks, nil, testlog.New(t), o)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return srv, hooks, conn
}

func envoyNode(id string) *corev3.Node {
	return &corev3.Node{Id: id, UserAgentName: "envoy"}
}

// openSotW opens a state-of-the-world stream as node and asks for clusters.
func openSotW(t *testing.T, conn *grpc.ClientConn, node string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(node), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	return s
}

// openDelta opens a delta stream as node and asks for clusters.
func openDelta(t *testing.T, conn *grpc.ClientConn, node string) discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient {
	t.Helper()
	d, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: envoyNode(node), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	return d
}

// fetch waits for the next response, failing after a timeout.
func fetch(t *testing.T, client sotwclient.ADSClient) *sotwclient.Response {
	t.Helper()
	type result struct {
		r   *sotwclient.Response
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := client.Fetch()
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.r
	case <-time.After(5 * time.Second):
		t.Fatal("no response within 5s")
	}
	return nil
}

func TestACKIsTracked(t *testing.T) {
	srv, hooks, conn := startServer(t, "a", "b")
	client := sotwclient.NewADSClient(context.Background(), envoyNode("p1.default"), resourcev3.ClusterType)
	if err := client.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	resp := fetch(t, client)
	if len(resp.Resources) != 2 {
		t.Fatalf("got %d clusters, want 2", len(resp.Resources))
	}
	if err := client.Ack(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		p, ok := srv.Tracker.Proxy("p1.default")
		ts := p.Types[resourcev3.ClusterType]
		return ok && ts != nil && ts.AckedVersion != "" && ts.AckedVersion == ts.SentVersion
	})
	if len(hooks.connected) != 1 || hooks.connected[0] != "p1.default" {
		t.Fatalf("connected = %v, want [p1.default]", hooks.connected)
	}
}

func TestNACKIsNotResentInALoop(t *testing.T) {
	srv, hooks, conn := startServer(t, "a")
	client := sotwclient.NewADSClient(context.Background(), envoyNode("p1.default"), resourcev3.ClusterType)
	if err := client.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	fetch(t, client)
	if err := client.Nack("cluster a: bad thing"); err != nil {
		t.Fatal(err)
	}

	// Without the guard, go-control-plane answers the NACK at once with the
	// same version, thousands of times a second. Count what arrives.
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			if _, err := client.Fetch(); err != nil {
				got <- n
				return
			}
			n++
			if n == 1 {
				got <- n
				return
			}
		}
	}()
	select {
	case n := <-got:
		t.Fatalf("server re-sent the rejected version (%d responses after the NACK)", n)
	case <-time.After(500 * time.Millisecond):
	}
	p, _ := srv.Tracker.Proxy("p1.default")
	nack := p.Types[resourcev3.ClusterType].LastNACK
	if nack == nil || nack.Message != "cluster a: bad thing" || nack.Version == "" {
		t.Fatalf("LastNACK = %+v, want the message and the rejected version", nack)
	}
	if n := srv.Metrics.NACKs("Cluster"); n != 1 {
		t.Fatalf("NACK counter = %v, want 1", n)
	}

	// A real change is still delivered.
	hooks.setClusters("p1.default", "a", "c")
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("got %d responses", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new version was not delivered after a NACK")
	}
}

func TestStaleNonceIsIgnored(t *testing.T) {
	_, hooks, conn := startServer(t, "a")
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := envoyNode("p1.default")
	send := func(version, nonce string) {
		t.Helper()
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType,
			VersionInfo: version, ResponseNonce: nonce}); err != nil {
			t.Fatal(err)
		}
	}
	send("", "")
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	send(first.GetVersionInfo(), first.GetNonce()) // ACK

	hooks.setClusters("p1.default", "a", "b")
	second, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// A request that answers the first response (stale nonce) arrives
	// after the second was sent: the server must ignore it rather than
	// treat it as a NACK or re-send.
	send("", first.GetNonce())
	send(second.GetVersionInfo(), second.GetNonce())
	hooks.setClusters("p1.default", "a", "b", "c")
	third, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(third.GetResources()) != 3 {
		t.Fatalf("after a stale nonce: got %d clusters, want the 3 of the next version", len(third.GetResources()))
	}
}

func TestReconnectSeesTheSameVersion(t *testing.T) {
	_, hooks, conn := startServer(t, "a", "b")
	versionOf := func() (string, []string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		client := sotwclient.NewADSClient(ctx, envoyNode("p1.default"), resourcev3.ClusterType)
		if err := client.InitConnect(conn); err != nil {
			t.Fatal(err)
		}
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode("p1.default"), TypeUrl: resourcev3.ClusterType}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range resp.GetResources() {
			c := &clusterv3.Cluster{}
			if err := r.UnmarshalTo(c); err != nil {
				t.Fatal(err)
			}
			names = append(names, c.GetName())
		}
		return resp.GetVersionInfo(), names
	}
	v1, n1 := versionOf()
	// Until every stream of the node has closed: the ADS client's own
	// stream may send its first request late, and connect and disconnect
	// the node once more.
	waitFor(t, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return len(hooks.gone) >= 1 && len(hooks.gone) == len(hooks.connected)
	})
	v2, n2 := versionOf()
	if v1 == "" || v1 != v2 || len(n1) != len(n2) {
		t.Fatalf("after reconnecting: version %q %v, before %q %v; want the same", v2, n2, v1, n1)
	}
}

func TestDeltaSendsOnlyWhatChanged(t *testing.T) {
	srv, hooks, conn := startServer(t, "a", "b")
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := envoyNode("p1.default")
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetResources()) != 2 {
		t.Fatalf("initial delta response: %d resources, want 2", len(first.GetResources()))
	}
	versions := map[string]string{}
	for _, r := range first.GetResources() {
		versions[r.GetName()] = r.GetVersion()
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}

	hooks.setClusters("p1.default", "a", "c") // b removed, c added, a unchanged
	// The cache adds before it removes (make before break), so the change
	// may arrive as one response or as two: c added, then b removed.
	var added, removed []string
	var second *discoveryv3.DeltaDiscoveryResponse
	for i := 0; i < 2 && (len(added) == 0 || len(removed) == 0); i++ {
		if second, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
		for _, r := range second.GetResources() {
			added = append(added, r.GetName())
		}
		removed = append(removed, second.GetRemovedResources()...)
		if len(removed) == 0 {
			if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, ResponseNonce: second.GetNonce()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(added) != 1 || added[0] != "c" {
		t.Fatalf("delta updates carried %v, want only [c] (a did not change)", added)
	}
	if len(removed) != 1 || removed[0] != "b" {
		t.Fatalf("removed = %v, want [b]", removed)
	}

	// A NACK over delta is recorded and not answered with a resend.
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType,
		ResponseNonce: second.GetNonce(), ErrorDetail: &status.Status{Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		p, _ := srv.Tracker.Proxy("p1.default")
		ts := p.Types[resourcev3.ClusterType]
		return ts != nil && ts.LastNACK != nil && ts.LastNACK.Message == "no"
	})
	// Delta requests carry no version: the rejected one is the stream's
	// last response's, found by its nonce.
	if p, _ := srv.Tracker.Proxy("p1.default"); p.Types[resourcev3.ClusterType].LastNACK.Version != second.GetSystemVersionInfo() {
		t.Errorf("NACK recorded for version %q, want the rejected response's %q",
			p.Types[resourcev3.ClusterType].LastNACK.Version, second.GetSystemVersionInfo())
	}
	got := make(chan struct{})
	go func() {
		if _, err := stream.Recv(); err == nil {
			close(got)
		}
	}()
	select {
	case <-got:
		t.Fatal("delta server re-sent after a NACK")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestListenerSubscriptionsReachHooks(t *testing.T) {
	_, hooks, conn := startServer(t)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "c.default", UserAgentName: "gRPC Go"}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType,
		ResourceNames: []string{"my-app", "other:80"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		got := hooks.listeners["c.default"]
		return len(got) == 2 && got[0] == "my-app" && got[1] == "other:80"
	})
}

func TestNodeWithoutIDIsRefused(t *testing.T) {
	_, _, conn := startServer(t)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{}, TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Fatal("a node without an ID was served")
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSotWAndDeltaStreamsAreTrackedApart: SotW and delta streams are
// numbered separately; stream 1 of each must be two proxies.
func TestSotWAndDeltaStreamsAreTrackedApart(t *testing.T) {
	_, hooks, conn := startServer(t, "a")
	client := sotwclient.NewADSClient(context.Background(), envoyNode("sotw.default"), resourcev3.ClusterType)
	if err := client.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	fetch(t, client)

	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: envoyNode("delta.default"), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delta stream's proxy was never connected (taken for the SotW stream with the same number)")
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.connected) != 2 {
		t.Fatalf("connected %v, want both proxies", hooks.connected)
	}
}

// A proxy that writes requests without reading the responses meanwhile
// (as a simple client does) does not deadlock with a server blocked
// sending it a large response: the server keeps reading requests.
func TestStreamReadsRequestsWhileSending(t *testing.T) {
	clusters := manyClusters()
	_, _, conn := startServer(t, clusters...)
	stream := openSotW(t, conn, "my-app-v1.default")
	sendWithoutReading(t, func(int) error {
		return stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: clusters[:1500]})
	})
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	checkAllClusters(t, resp.GetTypeUrl(), len(resp.GetResources()), len(clusters))
}

// The same for delta streams, whose protocol go-control-plane runs (its
// delta server reads requests while it sends).
func TestDeltaStreamReadsRequestsWhileSending(t *testing.T) {
	clusters := manyClusters()
	_, _, conn := startServer(t, clusters...)
	stream := openDelta(t, conn, "my-app-v1.default")
	sendWithoutReading(t, func(i int) error {
		names := clusters[i*300 : i*300+1500]
		return stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names})
	})
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	checkAllClusters(t, resp.GetTypeUrl(), len(resp.GetResources()), len(clusters))
}

// manyClusters names 20000 clusters: a first response of about 1.6 MB.
func manyClusters() []string {
	var clusters []string
	for i := range 20000 {
		clusters = append(clusters, fmt.Sprintf("outbound|80||service-%05d.some-namespace.svc.cluster.local", i))
	}
	return clusters
}

// sendWithoutReading sends 60 requests of about 100 KB each, more than
// every window and buffer on the way, before anything is read, and fails
// if they cannot all be sent.
func sendWithoutReading(t *testing.T, send func(i int) error) {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		for i := range 60 {
			if err := send(i); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy's requests were not read while the server was sending it a response: deadlock")
	}
}

// checkAllClusters checks that a first response sent every cluster.
func checkAllClusters(t *testing.T, typeURL string, got, want int) {
	t.Helper()
	if typeURL != resourcev3.ClusterType || got != want {
		t.Errorf("first response: %s with %d resources, want %d clusters", typeURL, got, want)
	}
}

// A delta response carries only some resources, so a NACK of one that is
// no longer the latest is still recorded (with that response's nonce);
// an ACK of it changes nothing.
func TestDeltaNACKOfAnOlderResponseIsRecorded(t *testing.T) {
	srv, _, conn := startServer(t, "a", "b")
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	node := envoyNode("p1.default")
	ask := func(req *discoveryv3.DeltaDiscoveryRequest) *discoveryv3.DeltaDiscoveryResponse {
		t.Helper()
		req.TypeUrl = resourcev3.ClusterType
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := ask(&discoveryv3.DeltaDiscoveryRequest{Node: node, ResourceNamesSubscribe: []string{"a"}})
	second := ask(&discoveryv3.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"b"}})
	if len(first.GetResources()) != 1 || len(second.GetResources()) != 1 || first.GetNonce() == second.GetNonce() {
		t.Fatalf("responses %v and %v; want a, then b", first.GetResources(), second.GetResources())
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType,
		ResponseNonce: first.GetNonce(), ErrorDetail: &status.Status{Message: "a is bad"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		p, _ := srv.Tracker.Proxy("p1.default")
		n := p.Types[resourcev3.ClusterType].LastNACK
		return n != nil && n.Message == "a is bad" && n.Nonce == first.GetNonce() && n.Version == first.GetSystemVersionInfo()
	})
}

// Nonces are per stream: a NACK is recorded with the version the NACKing
// stream sent, even when another stream of the same node has since sent
// another version under the same nonce.
func TestNACKVersionIsTheStreamsOwn(t *testing.T) {
	srv, hooks, conn := startServer(t, "a")
	open := func() (discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, *discoveryv3.DeltaDiscoveryResponse) {
		t.Helper()
		s := openDelta(t, conn, "p1.default")
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return s, r
	}
	a, fromA := open()
	hooks.setClusters("p1.default", "a", "b")
	_, fromB := open()
	if fromA.GetNonce() != fromB.GetNonce() || fromA.GetSystemVersionInfo() == fromB.GetSystemVersionInfo() {
		t.Fatalf("want the same nonce at two versions: %s@%s, %s@%s", fromA.GetNonce(), fromA.GetSystemVersionInfo(), fromB.GetNonce(), fromB.GetSystemVersionInfo())
	}
	if err := a.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: fromA.GetNonce(),
		ErrorDetail: &status.Status{Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		p, _ := srv.Tracker.Proxy("p1.default")
		n := p.Types[resourcev3.ClusterType].LastNACK
		return n != nil && n.Message == "no"
	})
	if p, _ := srv.Tracker.Proxy("p1.default"); p.Types[resourcev3.ClusterType].LastNACK.Version != fromA.GetSystemVersionInfo() {
		t.Errorf("NACK recorded for version %s, want stream A's %s (stream B sent %s)",
			p.Types[resourcev3.ClusterType].LastNACK.Version, fromA.GetSystemVersionInfo(), fromB.GetSystemVersionInfo())
	}
}

// An idle stream has one goroutine of its own, the one reading its
// requests; a sender runs only while responses wait (stream.go). The test
// counts the goroutines running minimesh's stream code, with streams idle,
// then again after a change has reached every stream.
func TestIdleStreamHasOneGoroutine(t *testing.T) {
	const perFlavor = 10
	_, hooks, conn := startServer(t, "a")
	var sotw []discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	var delta []discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	for i := range perFlavor {
		sotw = append(sotw, openSotW(t, conn, fmt.Sprintf("sotw-%d.default", i)))
		delta = append(delta, openDelta(t, conn, fmt.Sprintf("delta-%d.default", i)))
	}
	// receive reads each stream's next response and ACKs it.
	receive := func(wantClusters int) {
		t.Helper()
		for _, s := range sotw {
			r, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(r.GetResources()) != wantClusters {
				t.Fatalf("SotW response with %d clusters, want %d", len(r.GetResources()), wantClusters)
			}
			if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range delta {
			r, err := d.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: r.GetNonce()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	receive(1)
	checkStreamGoroutines(t, 2*perFlavor)

	for i := range perFlavor {
		hooks.setClusters(fmt.Sprintf("sotw-%d.default", i), "a", "b")
		hooks.setClusters(fmt.Sprintf("delta-%d.default", i), "a", "b")
	}
	receive(2)
	checkStreamGoroutines(t, 2*perFlavor)
}

// checkStreamGoroutines waits until the goroutines running minimesh's
// stream code are one per stream, each reading requests, and fails if
// they do not come to that.
func checkStreamGoroutines(t *testing.T, streams int) {
	t.Helper()
	var readers, others int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		readers, others = 0, 0
		for _, g := range strings.Split(string(buf), "\n\n") {
			switch {
			case strings.Contains(g, "minimesh/xds.(*sotwServer).serve(") || strings.Contains(g, "minimesh/xds.(*deltaServer).serve("):
				readers++ // the goroutine gRPC runs the handler on
			case strings.Contains(g, "minimesh/xds.Test") || strings.Contains(g, "minimesh/xds.(*Server).Serve("):
				// the test, and the server's listener
			case strings.Contains(g, "minimesh/xds."):
				others++
			}
		}
		if readers == streams && others == 0 {
			return
		}
	}
	t.Fatalf("%d streams: %d goroutines reading requests and %d others in the stream code; want one reader per stream and nothing else",
		streams, readers, others)
}

// Options.Activity hears of every request read, on both kinds of stream.
func TestActivityIsToldOfEveryRequest(t *testing.T) {
	var requests atomic.Int32
	_, _, conn := startServerWith(t, Options{Activity: func() { requests.Add(1) }}, "a")
	s := openSotW(t, conn, "sotw.default")
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	d := openDelta(t, conn, "delta.default")
	if _, err := d.Recv(); err != nil {
		t.Fatal(err)
	}
	// The SotW ACK may still be on its way; three requests in all.
	for deadline := time.Now().Add(5 * time.Second); requests.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := requests.Load(); n != 3 {
		t.Fatalf("activity told of %d requests, want 3", n)
	}
}
