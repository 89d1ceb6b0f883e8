package cache_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/minimesh/minimesh/cache"
)

// withWeights is the valid set with the gRPC client's canary split changed.
func withWeights(t *testing.T, v1, v2 uint32) resources {
	return setWeights(t, valid(), v1, v2)
}

// setWeights changes the gRPC client's canary split in rs.
func setWeights(t *testing.T, rs resources, v1, v2 uint32) resources {
	rs.replace(t, resourcev3.RouteType, grpcRoutes, routeConfig(grpcRoutes,
		virtualHost("my-app.default.svc.cluster.local:80", []string{"my-app.default.svc.cluster.local:80"},
			split("default", weighted{v1Cluster, v1}, weighted{v2Cluster, v2}))))
	return rs
}

// versionsOf returns the versions of a snapshot, nil for none.
func versionsOf(s *cache.Snapshot) map[string]string {
	if s == nil {
		return nil
	}
	return s.Versions()
}

func shortTypes(typeURLs []string) []string {
	var out []string
	for _, t := range typeURLs {
		out = append(out, cache.ShortType(t))
	}
	return out
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	c := cache.New(nil)
	const node = "client.default"

	if c.Get(node) != nil {
		t.Fatal("Get before any publish returned a snapshot")
	}
	first := newSnapshot(t, valid())
	changed, err := c.Publish(ctx, node, first)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, cache.Types) {
		t.Errorf("first publish: changed %v, want every type %v", shortTypes(changed), shortTypes(cache.Types))
	}
	if got := c.Get(node); got == nil || !maps.Equal(got.Versions(), first.Versions()) {
		t.Errorf("Get after the first publish: %v, want versions %v", versionsOf(got), first.Versions())
	}

	// The same content again, built anew: nothing to push.
	changed, err = c.Publish(ctx, node, newSnapshot(t, valid()))
	if err != nil || changed != nil {
		t.Errorf("publishing the same content again: changed %v, err %v; want nil, nil", shortTypes(changed), err)
	}

	// Only routes change.
	routes := newSnapshot(t, withWeights(t, 50, 50))
	changed, err = c.Publish(ctx, node, routes)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{resourcev3.RouteType}; !slices.Equal(changed, want) {
		t.Errorf("changing routes only: changed %v, want %v", shortTypes(changed), shortTypes(want))
	}
	got := c.Get(node)
	if got == nil || !maps.Equal(got.Versions(), routes.Versions()) {
		t.Fatalf("Get after the route change: %v, want versions %v", versionsOf(got), routes.Versions())
	}
	if rc, want := got.GetResources(resourcev3.RouteType)[grpcRoutes], routes.GetResources(resourcev3.RouteType)[grpcRoutes]; !proto.Equal(rc, want) {
		t.Errorf("Get serves route configuration %v, want %v", rc, want)
	}

	// What the xDS server answers from follows.
	if r := watchOnce(c, node, resourcev3.RouteType); r == nil || r.Version != routes.GetVersion(resourcev3.RouteType) {
		t.Errorf("a new stream is answered %v, want route version %s", r, routes.GetVersion(resourcev3.RouteType))
	}

	// Other nodes are separate.
	if c.Get("other.default") != nil {
		t.Error("Get of a node never published returned a snapshot")
	}

	c.Forget(node)
	if c.Get(node) != nil {
		t.Error("Get after Forget returned a snapshot")
	}
	if r := watchOnce(c, node, resourcev3.RouteType); r != nil {
		t.Error("a new stream was answered after Forget")
	}
	changed, err = c.Publish(ctx, node, routes)
	if err != nil || !slices.Equal(changed, cache.Types) {
		t.Errorf("publish after Forget: changed %v, err %v; want every type", shortTypes(changed), err)
	}
}

// into delivers a watch's responses into a channel, which must have room
// for them.
func into[T any](ch chan T) func(T) { return func(r T) { ch <- r } }

// watchOnce opens a watch of a new stream that asks for every resource of
// typeURL, and returns the response it gets at once, or nil.
func watchOnce(c *cache.Cache, node, typeURL string) *cache.SotwResponse {
	out := make(chan *cache.SotwResponse, 1)
	var st cache.SotwState
	st.Subscribe(nil)
	cancel := c.WatchSotw(node, typeURL, "", st, into(out))
	defer cancel()
	select {
	case r := <-out:
		return r
	default:
		return nil
	}
}

// watcher holds a proxy's open SotW watches, one per type, all answering
// on one channel, the way the ADS server uses the cache.
type watcher struct {
	t         *testing.T
	c         *cache.Cache
	node      *corev3.Node
	responses chan *cache.SotwResponse
	state     map[string]*cache.SotwState    // by type
	last      map[string]*cache.SotwResponse // by type: the last response received
}

// newWatcher is a proxy "my-app-v1.default" with no watch open yet.
func newWatcher(t *testing.T, c *cache.Cache) *watcher {
	return &watcher{
		t:         t,
		c:         c,
		node:      &corev3.Node{Id: "my-app-v1.default"},
		responses: make(chan *cache.SotwResponse, 16),
		state:     map[string]*cache.SotwState{},
		last:      map[string]*cache.SotwResponse{},
	}
}

// watchOrder lists the types in the order watches are opened: the reverse
// of the push order, so that the push order cannot come from it.
var watchOrder = []string{resourcev3.RouteType, resourcev3.ListenerType, resourcev3.EndpointType, resourcev3.ClusterType}

// open opens one watch per type. Clusters and listeners are asked for by
// wildcard, endpoints and routes by name, as Envoy does; each request acks
// the last response of its type.
func (w *watcher) open() {
	w.t.Helper()
	for _, typ := range watchOrder {
		st := w.state[typ]
		if st == nil {
			st = &cache.SotwState{}
			w.state[typ] = st
		}
		version := ""
		if last := w.last[typ]; last != nil {
			version = last.Version
		}
		var names []string
		if typ == resourcev3.EndpointType || typ == resourcev3.RouteType {
			for _, r := range valid()[typ] {
				names = append(names, cachev3.GetResourceName(r))
			}
			slices.Sort(names)
		}
		st.Subscribe(names)
		w.c.WatchSotw(w.node.GetId(), typ, version, *st, into(w.responses))
	}
}

// receive takes n responses from the channel, in the order they came, and
// records them as sent.
func (w *watcher) receive(n int) []*cache.SotwResponse {
	w.t.Helper()
	var out []*cache.SotwResponse
	for range n {
		select {
		case r := <-w.responses:
			w.last[r.TypeURL] = r
			w.state[r.TypeURL].Sent(r)
			out = append(out, r)
		case <-time.After(5 * time.Second):
			w.t.Fatalf("got %d responses, want %d", len(out), n)
		}
	}
	return out
}

// none checks that no response is waiting. Responses are sent while
// WatchSotw or Publish runs, so there is nothing to wait for.
func (w *watcher) none(what string) {
	w.t.Helper()
	select {
	case r := <-w.responses:
		w.t.Errorf("%s: unexpected %s response", what, cache.ShortType(r.TypeURL))
	default:
	}
}

func typesOf(rs []*cache.SotwResponse) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.TypeURL)
	}
	return out
}

// round returns a valid set in which clusters, endpoints, listeners and
// routes all differ from every other round's.
//
// Rounds only add clusters (each keeps the earlier rounds' extra clusters):
// removals are pushed last, see TestPublishRemovesClustersLast.
func round(t *testing.T, i int) resources {
	rs := withWeights(t, uint32(1+i), uint32(99-i))
	extra := fmt.Sprintf("outbound|%d||round.example.com", 8000+i)
	for j := 0; j <= i; j++ {
		name := fmt.Sprintf("outbound|%d||round.example.com", 8000+j)
		rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], staticCluster(name, uint32(8000+j)))
	}
	rs.replace(t, resourcev3.EndpointType, v1Cluster, loadAssignment(v1Cluster, 50051, fmt.Sprintf("10.0.0.%d", 10+i)))
	port := uint32(20000 + i)
	rs[resourcev3.ListenerType] = append(rs[resourcev3.ListenerType], listener(fmt.Sprintf("127.0.0.1_%d", port), port, tcpProxyFilter(extra)))
	return rs
}

// A change to every type reaches a proxy's watches in the order of
// cache.Types: clusters, endpoints, listeners, routes.
func TestPublishOrder(t *testing.T) {
	ctx := context.Background()
	c := cache.New(nil)
	w := newWatcher(t, c)
	if _, err := c.Publish(ctx, w.node.GetId(), newSnapshot(t, round(t, 0))); err != nil {
		t.Fatal(err)
	}
	// The proxy connects: every watch is answered at once.
	w.open()
	w.receive(len(watchOrder))
	w.none("initial requests")

	want := []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}
	prev := newSnapshot(t, round(t, 0))
	// Several rounds, so that an order that came by chance would not last.
	for i := 1; i <= 5; i++ {
		w.open() // acks: nothing to send until something changes
		w.none(fmt.Sprintf("round %d: acks", i))

		s := newSnapshot(t, round(t, i))
		changed, err := c.Publish(ctx, w.node.GetId(), s)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(changed, want) {
			t.Fatalf("round %d: Publish changed %v, want %v", i, shortTypes(changed), shortTypes(want))
		}
		got := w.receive(len(want))
		if !slices.Equal(typesOf(got), want) {
			t.Errorf("round %d: responses in the order %v, want %v", i, shortTypes(typesOf(got)), shortTypes(want))
		}
		for _, r := range got {
			typ := r.TypeURL
			if v := r.Version; v != s.GetVersion(typ) {
				t.Errorf("round %d: %s response has version %s, want %s", i, cache.ShortType(typ), v, s.GetVersion(typ))
			}
			// Listeners and clusters are sent whole; endpoints and routes
			// only where they changed.
			dr := onWire(t, r)
			want := len(s.GetResources(typ))
			if typ == resourcev3.EndpointType || typ == resourcev3.RouteType {
				want = changedNames(prev, s, typ)
			}
			if got := len(dr.GetResources()); got != want {
				t.Errorf("round %d: %s response has %d resources, want %d", i, cache.ShortType(typ), got, want)
			}
		}
		prev = s
		w.none(fmt.Sprintf("round %d: after the pushes", i))
	}

	// Only routes change: only the route watch fires.
	w.open()
	if _, err := c.Publish(ctx, w.node.GetId(), newSnapshot(t, setWeights(t, round(t, 5), 42, 58))); err != nil {
		t.Fatal(err)
	}
	if got := typesOf(w.receive(1)); !slices.Equal(got, []string{resourcev3.RouteType}) {
		t.Errorf("routes-only change: responses %v, want [RouteConfiguration]", shortTypes(got))
	}
	w.none("routes-only change")
}

// A cluster that routes no longer use is removed only after the listeners
// and routes that used it changed ("make before break").
func TestPublishRemovesClustersLast(t *testing.T) {
	ctx := context.Background()
	c := cache.New(nil)
	w := newWatcher(t, c)
	before := round(t, 1) // has outbound|8000|| and outbound|8001|| (listener 20001 uses 8001)
	if _, err := c.Publish(ctx, w.node.GetId(), newSnapshot(t, before)); err != nil {
		t.Fatal(err)
	}
	w.open()
	w.receive(len(watchOrder))

	// The next config drops cluster 8001 and the listener that used it,
	// and routes differently.
	after := setWeights(t, round(t, 0), 30, 70)
	w.open()
	s := newSnapshot(t, after)
	if _, err := c.Publish(ctx, w.node.GetId(), s); err != nil {
		t.Fatal(err)
	}
	got := w.receive(4)
	// The endpoints of v1 moved too (an update: pushed first). The old
	// cluster goes last, after the routes that stopped using it.
	want := []string{resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType}
	if !slices.Equal(typesOf(got), want) {
		t.Fatalf("pushes %v, want %v", shortTypes(typesOf(got)), shortTypes(want))
	}
	w.none("after the pushes")
	got = got[3:]
	dr := onWire(t, got[0])
	if n, want := len(dr.GetResources()), len(s.GetResources(resourcev3.ClusterType)); n != want {
		t.Fatalf("final Cluster response has %d clusters, want %d", n, want)
	}
}

// onWire is r's response as a proxy decodes it. A response that sends a
// whole set carries its resources encoded once and shared (cache/wire.go),
// not as messages, so only its encoding shows them.
func onWire(t *testing.T, r *cache.SotwResponse) *discoveryv3.DiscoveryResponse {
	t.Helper()
	dr := r.Message()
	b, err := proto.Marshal(dr)
	if err != nil {
		t.Fatal(err)
	}
	out := &discoveryv3.DiscoveryResponse{}
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatalf("a %s response does not decode: %v", cache.ShortType(dr.GetTypeUrl()), err)
	}
	return out
}

// changedNames counts the resources of typeURL that are new in next or
// differ from prev.
func changedNames(prev, next *cache.Snapshot, typeURL string) int {
	n := 0
	before := prev.GetVersionMap(typeURL)
	for name, v := range next.GetVersionMap(typeURL) {
		if before[name] != v {
			n++
		}
	}
	return n
}
