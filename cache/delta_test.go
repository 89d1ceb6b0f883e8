package cache_test

// The delta responder is tested through minimesh's ADS server, over an
// in-memory connection, with a client that speaks delta xDS the way Envoy
// does: each test is a conversation.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/xds"
)

// serveDelta runs minimesh's ADS server answering from c and returns a
// connection to it. The tests publish the snapshots themselves.
func serveDelta(t *testing.T, c *cache.Cache) *grpc.ClientConn {
	t.Helper()
	g := xds.NewServer(c, publishedByTest{}, nil, zap.NewNop(), xds.Options{})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
	})
	return conn
}

// publishedByTest are the server's hooks: every proxy is let in, and the
// test publishes its configuration.
type publishedByTest struct{}

func (publishedByTest) Authorize(*corev3.Node, xds.Peer) error { return nil }
func (publishedByTest) Connect(*corev3.Node) error             { return nil }
func (publishedByTest) Listeners(*corev3.Node, []string)       {}
func (publishedByTest) Disconnect(string)                      {}

// deltaEnvoy is one delta ADS stream of a proxy.
type deltaEnvoy struct {
	t         *testing.T
	node      *corev3.Node
	stream    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	responses chan *discoveryv3.DeltaDiscoveryResponse
	close     context.CancelFunc
}

func openDelta(t *testing.T, conn *grpc.ClientConn, nodeID string) *deltaEnvoy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &deltaEnvoy{t: t, node: &corev3.Node{Id: nodeID}, stream: s,
		responses: make(chan *discoveryv3.DeltaDiscoveryResponse, 64), close: cancel}
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			e.responses <- r
		}
	}()
	t.Cleanup(cancel)
	return e
}

// ask sends a request: subscriptions, unsubscriptions, and (on the first
// request of a type) the versions the proxy already holds.
func (e *deltaEnvoy) ask(typ string, subscribe, unsubscribe []string, initial map[string]string) {
	e.t.Helper()
	if err := e.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: e.node, TypeUrl: typ,
		ResourceNamesSubscribe: subscribe, ResourceNamesUnsubscribe: unsubscribe, InitialResourceVersions: initial}); err != nil {
		e.t.Fatal(err)
	}
}

// ack accepts a response; nack rejects it.
func (e *deltaEnvoy) ack(r *discoveryv3.DeltaDiscoveryResponse) { e.reply(r, nil) }

func (e *deltaEnvoy) nack(r *discoveryv3.DeltaDiscoveryResponse) {
	e.reply(r, &rpcstatus.Status{Message: "rejected by the test"})
}

func (e *deltaEnvoy) reply(r *discoveryv3.DeltaDiscoveryResponse, nack *rpcstatus.Status) {
	e.t.Helper()
	if err := e.stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: e.node, TypeUrl: r.GetTypeUrl(),
		ResponseNonce: r.GetNonce(), ErrorDetail: nack}); err != nil {
		e.t.Fatal(err)
	}
}

// next is the next response, which must be of type typ.
func (e *deltaEnvoy) next(typ string) *discoveryv3.DeltaDiscoveryResponse {
	e.t.Helper()
	select {
	case r := <-e.responses:
		if r.GetTypeUrl() != typ {
			e.t.Fatalf("got a %s response (%v, removed %v), want %s", cache.ShortType(r.GetTypeUrl()),
				namesOf(r), r.GetRemovedResources(), cache.ShortType(typ))
		}
		return r
	case <-time.After(5 * time.Second):
		e.t.Fatalf("no %s response within 5s", cache.ShortType(typ))
	}
	return nil
}

// quiet checks that no response comes. Requests are answered as they are
// processed, so a short wait after a round trip is enough.
func (e *deltaEnvoy) quiet(what string) {
	e.t.Helper()
	select {
	case r := <-e.responses:
		e.t.Fatalf("%s: unexpected %s response: %v, removed %v", what, cache.ShortType(r.GetTypeUrl()), namesOf(r), r.GetRemovedResources())
	case <-time.After(200 * time.Millisecond):
	}
}

func namesOf(r *discoveryv3.DeltaDiscoveryResponse) []string {
	var out []string
	for _, res := range r.GetResources() {
		out = append(out, res.GetName())
	}
	slices.Sort(out)
	return out
}

func versionsIn(r *discoveryv3.DeltaDiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, res := range r.GetResources() {
		out[res.GetName()] = res.GetVersion()
	}
	return out
}

func sorted(names ...string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

func publish(t *testing.T, c *cache.Cache, node string, rs resources) *cache.Snapshot {
	t.Helper()
	s := newSnapshot(t, rs)
	if _, err := c.Publish(context.Background(), node, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A wildcard stream gets every resource, with the version the cache gave
// it and the bytes of the resource, then nothing more until a change; a
// wildcard stream of a type the proxy has nothing of still gets an answer.
func TestDeltaWildcardGetsEveryResource(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	s := publish(t, c, "p.default", rs)
	e := openDelta(t, serveDelta(t, c), "p.default")

	e.ask(resourcev3.ClusterType, nil, nil, nil)
	r := e.next(resourcev3.ClusterType)
	if want := sorted(v1Cluster, v2Cluster, dbCluster, inboundCluster); !slices.Equal(namesOf(r), want) {
		t.Fatalf("first CDS response: %v, want %v", namesOf(r), want)
	}
	if r.GetSystemVersionInfo() != s.GetVersion(resourcev3.ClusterType) {
		t.Errorf("system_version_info %q, want the set's version %q", r.GetSystemVersionInfo(), s.GetVersion(resourcev3.ClusterType))
	}
	for _, res := range r.GetResources() {
		if want := s.GetVersionMap(resourcev3.ClusterType)[res.GetName()]; res.GetVersion() != want {
			t.Errorf("%s: version %q, want %q", res.GetName(), res.GetVersion(), want)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs.find(resourcev3.ClusterType, res.GetName()))
		if err != nil {
			t.Fatal(err)
		}
		if string(res.GetResource().GetValue()) != string(b) || res.GetResource().GetTypeUrl() != resourcev3.ClusterType {
			t.Errorf("%s: sent bytes (%s) are not the resource's deterministic encoding", res.GetName(), res.GetResource().GetTypeUrl())
		}
	}
	e.ack(r)
	e.quiet("after the ACK")

	e.ask(resourcev3.SecretType, nil, nil, nil)
	if r := e.next(resourcev3.SecretType); len(r.GetResources())+len(r.GetRemovedResources()) != 0 {
		t.Errorf("SDS wildcard with no secrets: %v, removed %v; want an empty answer", namesOf(r), r.GetRemovedResources())
	}
}

// A named stream gets what it names, one name at a time as it subscribes,
// nothing for what it dropped, and what it names once it exists.
func TestDeltaNamedSubscriptions(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	publish(t, c, "p.default", rs)
	e := openDelta(t, serveDelta(t, c), "p.default")
	eds := resourcev3.EndpointType

	e.ask(eds, []string{v1Cluster}, nil, nil)
	r := e.next(eds)
	if !slices.Equal(namesOf(r), []string{v1Cluster}) {
		t.Fatalf("subscribed to %s: got %v", v1Cluster, namesOf(r))
	}
	e.ack(r)
	e.ask(eds, []string{v2Cluster}, nil, nil)
	if r = e.next(eds); !slices.Equal(namesOf(r), []string{v2Cluster}) {
		t.Fatalf("subscribed to %s too: got %v, want only it", v2Cluster, namesOf(r))
	}
	e.ack(r)
	e.ask(eds, nil, []string{v1Cluster}, nil)
	e.quiet("after unsubscribing")

	// v1 changes: no longer subscribed. v2 changes: sent alone.
	rs.replace(t, eds, v1Cluster, loadAssignment(v1Cluster, 50051, "10.0.0.1", "10.0.0.9"))
	publish(t, c, "p.default", rs)
	e.quiet("a change of an unsubscribed resource")
	rs.replace(t, eds, v2Cluster, loadAssignment(v2Cluster, 50051, "10.0.0.2", "10.0.0.8"))
	publish(t, c, "p.default", rs)
	if r = e.next(eds); !slices.Equal(namesOf(r), []string{v2Cluster}) || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("after %s changed: %v, removed %v; want only it", v2Cluster, namesOf(r), r.GetRemovedResources())
	}
	e.ack(r)

	// A name that does not exist yet is sent when it appears.
	v3 := "outbound|80|v3|my-app.default.svc.cluster.local"
	e.ask(eds, []string{v3}, nil, nil)
	e.quiet("subscribing to a resource that does not exist")
	rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], edsCluster(v3, ""))
	rs[eds] = append(rs[eds], loadAssignment(v3, 50051, "10.0.0.3"))
	publish(t, c, "p.default", rs)
	if r = e.next(eds); !slices.Equal(namesOf(r), []string{v3}) {
		t.Fatalf("after %s appeared: %v, want only it", v3, namesOf(r))
	}
	e.ack(r)

	// Subscribing again to v1 sends its current version.
	e.ask(eds, []string{v1Cluster}, nil, nil)
	if r = e.next(eds); !slices.Equal(namesOf(r), []string{v1Cluster}) {
		t.Fatalf("subscribed to %s again: %v, want it", v1Cluster, namesOf(r))
	}
}

// Resources that go are removed: from a wildcard stream, and from a named
// stream that subscribes to them.
func TestDeltaRemovals(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	publish(t, c, "p.default", rs)
	e := openDelta(t, serveDelta(t, c), "p.default")
	e.ask(resourcev3.ClusterType, nil, nil, nil)
	e.ack(e.next(resourcev3.ClusterType))
	e.ask(resourcev3.EndpointType, []string{v1Cluster, v2Cluster, dbService}, nil, nil)
	e.ack(e.next(resourcev3.EndpointType))

	rs.remove(t, resourcev3.ListenerType, tcpListener)
	rs.remove(t, resourcev3.ClusterType, dbCluster)
	rs.remove(t, resourcev3.EndpointType, dbService)
	publish(t, c, "p.default", rs)
	removed := map[string][]string{}
	for range 2 {
		select {
		case r := <-e.responses:
			if len(r.GetResources()) != 0 {
				t.Errorf("%s: sent %v, want removals only", cache.ShortType(r.GetTypeUrl()), namesOf(r))
			}
			removed[r.GetTypeUrl()] = append(removed[r.GetTypeUrl()], r.GetRemovedResources()...)
			e.ack(r)
		case <-time.After(5 * time.Second):
			t.Fatalf("removals so far %v; want CDS and EDS", removed)
		}
	}
	if got := removed[resourcev3.ClusterType]; !slices.Equal(got, []string{dbCluster}) {
		t.Errorf("CDS removed %v, want [%s]", got, dbCluster)
	}
	if got := removed[resourcev3.EndpointType]; !slices.Equal(got, []string{dbService}) {
		t.Errorf("EDS removed %v, want [%s]", got, dbService)
	}
	e.quiet("after the removals")
}

// A proxy that reconnects with the versions it holds is sent only what it
// lacks or holds at another version, and told of what is gone.
func TestDeltaReconnectSendsOnlyWhatIsStale(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	s := publish(t, c, "p.default", rs)
	conn := serveDelta(t, c)

	held := map[string]string{}
	for name, v := range s.GetVersionMap(resourcev3.ClusterType) {
		held[name] = v
	}
	held[v2Cluster] = "an-older-version"
	held["outbound|80||gone.default.svc.cluster.local"] = "0123456789abcdef"
	delete(held, dbCluster)

	e := openDelta(t, conn, "p.default")
	e.ask(resourcev3.ClusterType, nil, nil, held)
	r := e.next(resourcev3.ClusterType)
	if want := sorted(v2Cluster, dbCluster); !slices.Equal(namesOf(r), want) {
		t.Errorf("reconnect: sent %v, want only the stale and the missing %v", namesOf(r), want)
	}
	if want := []string{"outbound|80||gone.default.svc.cluster.local"}; !slices.Equal(r.GetRemovedResources(), want) {
		t.Errorf("reconnect: removed %v, want %v", r.GetRemovedResources(), want)
	}
	e.ack(r)

	// A named stream holding the current versions is sent nothing.
	eds := s.GetVersionMap(resourcev3.EndpointType)
	e.ask(resourcev3.EndpointType, []string{v1Cluster, v2Cluster, dbService}, nil, eds)
	e.quiet("a named reconnect that holds every current version")

	// And then follows changes as usual.
	rs.replace(t, resourcev3.EndpointType, v1Cluster, loadAssignment(v1Cluster, 50051, "10.0.0.7"))
	publish(t, c, "p.default", rs)
	if r = e.next(resourcev3.EndpointType); !slices.Equal(namesOf(r), []string{v1Cluster}) {
		t.Errorf("after a change: %v, want [%s]", namesOf(r), v1Cluster)
	}
}

// A NACK leaves what the stream was sent as it was: nothing is resent,
// and the next change sends only what changed.
func TestDeltaNACKKeepsState(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	publish(t, c, "p.default", rs)
	e := openDelta(t, serveDelta(t, c), "p.default")
	e.ask(resourcev3.EndpointType, []string{v1Cluster, v2Cluster, dbService}, nil, nil)
	r := e.next(resourcev3.EndpointType)
	if len(r.GetResources()) != 3 {
		t.Fatalf("first EDS response: %v, want 3 resources", namesOf(r))
	}
	e.nack(r)
	e.quiet("after a NACK")

	rs.replace(t, resourcev3.EndpointType, v2Cluster, loadAssignment(v2Cluster, 50051, "10.0.0.5"))
	publish(t, c, "p.default", rs)
	r = e.next(resourcev3.EndpointType)
	if !slices.Equal(namesOf(r), []string{v2Cluster}) {
		t.Errorf("after a NACK and a change of %s: %v, want only it", v2Cluster, namesOf(r))
	}
	e.nack(r)
	e.quiet("after a second NACK")
}

// meshOf is n EDS clusters and their endpoints, the clusters shared by
// every proxy (one run), as the translator hands them.
func meshOf(n int, endpointsOf func(i int) []string) (resources, map[string][]cache.Run) {
	rs := resources{}
	for i := range n {
		name := fmt.Sprintf("outbound|80||svc-%04d.default.svc.cluster.local", i)
		rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], edsCluster(name, ""))
		rs[resourcev3.EndpointType] = append(rs[resourcev3.EndpointType], loadAssignment(name, 80, endpointsOf(i)...))
	}
	runs := map[string][]cache.Run{
		resourcev3.ClusterType:  {{Key: "clusters", Start: 0, End: n}},
		resourcev3.EndpointType: {{Key: "endpoints", Start: 0, End: n}},
	}
	return rs, runs
}

// With 3000 endpoint sets, a change to one of them sends exactly that
// one to every proxy, and nothing of any other type.
func TestDeltaOneEndpointChangeOfThousands(t *testing.T) {
	const n = 3000
	c := cache.New(nil)
	conn := serveDelta(t, c)
	publishAll := func(nodes []string, changed string) {
		rs, runs := meshOf(n, func(i int) []string {
			if i == 1234 {
				return []string{"10.1.0.1", changed}
			}
			return []string{"10.1.0.1"}
		})
		memo := cache.NewMemo()
		for _, node := range nodes {
			s, err := cache.NewSnapshotShared(rs, runs, memo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(context.Background(), node, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	nodes := []string{"a.default", "b.default", "c.default"}
	publishAll(nodes, "10.1.0.2")
	var envoys []*deltaEnvoy
	for _, node := range nodes {
		e := openDelta(t, conn, node)
		e.ask(resourcev3.ClusterType, nil, nil, nil)
		r := e.next(resourcev3.ClusterType)
		if len(r.GetResources()) != n {
			t.Fatalf("%s: CDS has %d clusters, want %d", node, len(r.GetResources()), n)
		}
		e.ack(r)
		e.ask(resourcev3.EndpointType, namesOf(r), nil, nil)
		if r = e.next(resourcev3.EndpointType); len(r.GetResources()) != n {
			t.Fatalf("%s: EDS has %d endpoint sets, want %d", node, len(r.GetResources()), n)
		}
		e.ack(r)
		envoys = append(envoys, e)
	}

	publishAll(nodes, "10.1.0.3")
	want := "outbound|80||svc-1234.default.svc.cluster.local"
	for i, e := range envoys {
		r := e.next(resourcev3.EndpointType)
		if !slices.Equal(namesOf(r), []string{want}) || len(r.GetRemovedResources()) != 0 {
			t.Errorf("%s: the change sent %v (removed %v), want exactly [%s]", nodes[i], namesOf(r), r.GetRemovedResources(), want)
		}
		e.ack(r)
	}
	for _, e := range envoys {
		e.quiet("after the endpoint change")
	}
}

// A wildcard stream that names resources too keeps getting every resource
// until it unsubscribes from "*"; from then on, only what it names.
func TestDeltaWildcardEnds(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	publish(t, c, "p.default", rs)
	e := openDelta(t, serveDelta(t, c), "p.default")
	cds := resourcev3.ClusterType

	e.ask(cds, nil, nil, nil) // legacy wildcard
	r := e.next(cds)
	if len(namesOf(r)) != len(rs[cds]) {
		t.Fatalf("legacy wildcard: got %v, want every cluster", namesOf(r))
	}
	e.ack(r)
	e.ask(cds, []string{"*", v1Cluster}, nil, nil)
	e.quiet("naming a cluster the stream holds")

	changed := func(name string) *clusterv3.Cluster {
		cl := edsCluster(name, "")
		cl.ConnectTimeout = durationpb.New(7 * time.Second)
		return cl
	}
	rs.replace(t, cds, v2Cluster, changed(v2Cluster))
	publish(t, c, "p.default", rs)
	if r = e.next(cds); !slices.Equal(namesOf(r), []string{v2Cluster}) {
		t.Fatalf("wildcard and named, %s changed: got %v, want it", v2Cluster, namesOf(r))
	}
	e.ack(r)

	e.ask(cds, nil, []string{"*"}, nil)
	e.quiet("ending the wildcard")
	rs.replace(t, cds, v2Cluster, edsCluster(v2Cluster, ""))
	rs.replace(t, cds, v1Cluster, changed(v1Cluster))
	publish(t, c, "p.default", rs)
	if r = e.next(cds); !slices.Equal(namesOf(r), []string{v1Cluster}) || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("named only, both changed: got %v, removed %v; want only %s", namesOf(r), r.GetRemovedResources(), v1Cluster)
	}
}
