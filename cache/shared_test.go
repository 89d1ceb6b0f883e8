package cache_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/minimesh/minimesh/cache"
)

// proxyLists is what the translator hands one proxy: the shared EDS
// clusters (the very same messages for every proxy) after a static
// cluster of its own, built afresh for each proxy.
func proxyLists(shared []types.Resource, ownPort uint32) (resources, map[string][]cache.Run) {
	rs := valid()
	rs[resourcev3.ClusterType] = append([]types.Resource{staticCluster(inboundCluster, ownPort)}, shared...)
	runs := map[string][]cache.Run{resourcev3.ClusterType: {{Key: "outbound", Start: 1, End: 1 + len(shared)}}}
	return rs, runs
}

// sharedClusters are the EDS clusters of valid().
func sharedClusters() []types.Resource {
	var out []types.Resource
	for _, r := range valid()[resourcev3.ClusterType] {
		if r.(*clusterv3.Cluster).GetType() == clusterv3.Cluster_EDS {
			out = append(out, r)
		}
	}
	return out
}

// sameMap reports whether two maps are one and the same (not just equal).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestProxiesWithTheSameRunsShareTheirSets(t *testing.T) {
	memo := cache.NewMemo()
	shared := sharedClusters()
	build := func(port uint32) *cache.Snapshot {
		rs, runs := proxyLists(shared, port)
		s, err := cache.NewSnapshotShared(rs, runs, memo)
		if err != nil {
			t.Fatalf("NewSnapshotShared: %v", err)
		}
		return s
	}
	a, b, other := build(50051), build(50051), build(50052)
	typ := resourcev3.ClusterType
	if !sameMap(a.GetResources(typ), b.GetResources(typ)) {
		t.Error("two proxies with the same shared run and equal own clusters got two cluster sets, want one shared")
	}
	if sameMap(a.GetResources(typ), other.GetResources(typ)) || a.GetVersion(typ) == other.GetVersion(typ) {
		t.Error("a proxy whose own cluster differs shares the cluster set of another")
	}
	if got, want := len(other.GetResources(typ)), len(shared)+1; got != want {
		t.Errorf("cluster set has %d clusters, want %d", got, want)
	}
	// The same resources without any run marked give the same versions.
	rs, _ := proxyLists(shared, 50051)
	plain, err := cache.NewSnapshot(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain.Versions(), a.Versions()) {
		t.Errorf("versions with shared runs %v differ from without %v", a.Versions(), plain.Versions())
	}
}

func TestSharedRunsAreStillChecked(t *testing.T) {
	memo := cache.NewMemo()
	shared := sharedClusters()
	bad := proto.Clone(shared[0]).(*clusterv3.Cluster)
	bad.Name = "" // invalid: ValidateAll wants a name
	shared = append([]types.Resource{bad}, shared[1:]...)
	for i := range 2 { // the second proxy gets the memoized verdict
		rs, runs := proxyLists(shared, 50051)
		if s, err := cache.NewSnapshotShared(rs, runs, memo); err == nil || s != nil {
			t.Fatalf("proxy %d: NewSnapshotShared = %v, %v; want an error for the nameless cluster", i, s, err)
		}
	}
	// A run that lies outside the list is ignored, not trusted.
	rs, _ := proxyLists(sharedClusters(), 50051)
	runs := map[string][]cache.Run{resourcev3.ClusterType: {{Key: "x", Start: 3, End: 99}}}
	if _, err := cache.NewSnapshotShared(rs, runs, memo); err != nil {
		t.Fatalf("a run out of range: %v", err)
	}
	// A cross reference broken inside the shared set is found too.
	rs, runs = proxyLists(sharedClusters(), 50051)
	rs.remove(t, resourcev3.EndpointType, v1Cluster)
	if _, err := cache.NewSnapshotShared(rs, runs, memo); err == nil || !strings.Contains(err.Error(), "has no ClusterLoadAssignment") {
		t.Fatalf("endpoints missing: err = %v, want a ClusterLoadAssignment missing", err)
	}
}

// The resources go-control-plane sends are the deterministic encoding of
// the real ones, although it is handed pre-marshalled shells; and what the
// cache gives back to its own readers are the real messages.
func TestWireBytesAreTheResources(t *testing.T) {
	c := cache.New(nil)
	rs := valid()
	s := newSnapshot(t, rs)
	if _, err := c.Publish(context.Background(), "my-app-v1.default", s); err != nil {
		t.Fatal(err)
	}
	for _, typ := range cache.Types {
		want := map[string][]byte{}
		for _, r := range rs[typ] {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			want[cachev3.GetResourceName(r)] = b
			if got := c.Get("my-app-v1.default").GetResources(typ)[cachev3.GetResourceName(r)]; !proto.Equal(got, r) {
				t.Errorf("%s %q: Get returns %v, want the resource itself", cache.ShortType(typ), cachev3.GetResourceName(r), got)
			}
		}
		// Twice: the second stream is sent the set's encoding shared by
		// both (wire.go), the first its resources as messages.
		for attempt := range 2 {
			r := watchOnce(c, "my-app-v1.default", typ)
			if r == nil {
				t.Fatalf("%s: a new stream got no response", cache.ShortType(typ))
			}
			if encoded := len(r.Message().ProtoReflect().GetUnknown()) > 0; encoded != (attempt == 1 && len(want) > 0) {
				t.Errorf("%s, stream %d: sent as one shared encoding: %v", cache.ShortType(typ), attempt+1, encoded)
			}
			checkWireBytes(t, fmt.Sprintf("%s, stream %d", cache.ShortType(typ), attempt+1), typ, onWire(t, r), want)
		}
	}
}

// checkWireBytes checks that resp sends exactly the encodings in want.
func checkWireBytes(t *testing.T, what, typ string, resp *discoveryv3.DiscoveryResponse, want map[string][]byte) {
	t.Helper()
	var got [][]byte
	for _, a := range resp.GetResources() {
		if a.GetTypeUrl() != typ {
			t.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), typ)
		}
		got = append(got, a.GetValue())
	}
	var wantBytes [][]byte
	for _, b := range want {
		wantBytes = append(wantBytes, b)
	}
	cmp := func(a, b []byte) int { return strings.Compare(string(a), string(b)) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(wantBytes, cmp)
	if !slices.EqualFunc(got, wantBytes, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("%s: sent bytes differ from the resources' deterministic encoding", what)
	}
}

// A stream that names resources gets only those; one that later names one
// more, at the same version, is sent it without waiting for a new version.
func TestNamedSubscriptionsGetWhatTheyName(t *testing.T) {
	c := cache.New(nil)
	if _, err := c.Publish(context.Background(), "my-app-v1.default", newSnapshot(t, valid())); err != nil {
		t.Fatal(err)
	}
	node := newWatcher(t, c).node
	var st cache.SotwState
	ask := func(version string, names ...string) *cache.SotwResponse {
		t.Helper()
		st.Subscribe(names)
		ch := make(chan *cache.SotwResponse, 1)
		cancel := c.WatchSotw(node.GetId(), resourcev3.EndpointType, version, st, into(ch))
		defer cancel()
		select {
		case r := <-ch:
			st.Sent(r)
			return r
		default:
			return nil
		}
	}
	names := func(r *cache.SotwResponse) []string {
		var out []string
		for _, res := range onWire(t, r).GetResources() {
			var cla endpointv3.ClusterLoadAssignment
			if err := res.UnmarshalTo(&cla); err != nil {
				t.Fatal(err)
			}
			out = append(out, cla.GetClusterName())
		}
		slices.Sort(out)
		return out
	}
	first := ask("", v1Cluster)
	if first == nil || !slices.Equal(names(first), []string{v1Cluster}) {
		t.Fatalf("first response returns %v, want only %s", first, v1Cluster)
	}
	dr := onWire(t, first)
	if len(dr.GetResources()) != 1 {
		t.Fatalf("first response has %d resources, want 1", len(dr.GetResources()))
	}
	version := first.Version
	if again := ask(version, v1Cluster); again != nil {
		t.Fatalf("an ACK of the same version was answered: %v", names(again))
	}
	// Endpoint sets are sent where they changed or are new to the
	// stream: the one added, not the one it already has.
	more := ask(version, v1Cluster, v2Cluster)
	if more == nil || !slices.Equal(names(more), []string{v2Cluster}) {
		t.Fatalf("after subscribing to %s too: response %v, want only it", v2Cluster, more)
	}
	// Dropping one is not answered; asking for it again is, at the same
	// version, although the stream was sent it before.
	version = more.Version
	if fewer := ask(version, v2Cluster); fewer != nil {
		t.Fatalf("after unsubscribing from %s: response %v, want none", v1Cluster, names(fewer))
	}
	if again := ask(version, v1Cluster, v2Cluster); again == nil || !slices.Equal(names(again), []string{v1Cluster}) {
		t.Fatalf("after subscribing to %s again: response %v, want it sent again", v1Cluster, again)
	}
	// The same when the list the stream was answered repeats a name.
	ask(version, v1Cluster)
	if r := ask(version, v1Cluster, v1Cluster, v2Cluster); r == nil || !slices.Equal(names(r), []string{v2Cluster}) {
		t.Fatalf("asking again for %s in a list that repeats a name: response %v, want it", v2Cluster, r)
	}
	ask(version, v1Cluster)
	if again := ask(version, v1Cluster, v2Cluster); again == nil || !slices.Equal(names(again), []string{v2Cluster}) {
		t.Fatalf("after dropping and asking again for %s (answered in a list that repeats a name): response %v, want it", v2Cluster, again)
	}
}

// A cluster that changes is sent its endpoints again, unchanged: Envoy
// warms a changed cluster anew, and it finishes warming only with them.
// Clusters that did not change are not.
func TestChangedClusterIsSentItsEndpoints(t *testing.T) {
	c := cache.New(nil)
	const node = "my-app-v1.default"
	if _, err := c.Publish(context.Background(), node, newSnapshot(t, valid())); err != nil {
		t.Fatal(err)
	}
	var cds, eds cache.SotwState
	out := make(chan *cache.SotwResponse, 2)
	cds.Subscribe(nil)
	eds.Subscribe([]string{v1Cluster, v2Cluster, dbService})
	c.WatchSotw(node, resourcev3.ClusterType, "", cds, into(out))
	clusters := <-out
	cds.Sent(clusters)
	c.WatchSotw(node, resourcev3.EndpointType, "", eds, into(out))
	endpoints := <-out
	eds.Sent(endpoints)

	// v1's cluster changes (its connect timeout), its endpoints do not.
	changed := valid()
	v1 := edsCluster(v1Cluster, "")
	v1.ConnectTimeout = durationpb.New(7 * time.Second)
	changed.replace(t, resourcev3.ClusterType, v1Cluster, v1)
	if _, err := c.Publish(context.Background(), node, newSnapshot(t, changed)); err != nil {
		t.Fatal(err)
	}
	cancel := c.WatchSotw(node, resourcev3.ClusterType, clusters.Version, cds, into(out))
	defer cancel()
	refresh := cds.Sent(<-out)
	if !slices.Equal(refresh, []string{v1Cluster}) {
		t.Fatalf("clusters response owes endpoints %v, want only %s's", refresh, v1Cluster)
	}
	if !eds.Owe(refresh) {
		t.Fatal("the endpoint subscription does not include the owed endpoints")
	}
	// The endpoints did not change, yet the stream is answered at once,
	// with v1's endpoints only.
	cancelEDS := c.WatchSotw(node, resourcev3.EndpointType, endpoints.Version, eds, into(out))
	defer cancelEDS()
	select {
	case r := <-out:
		if got := onWire(t, r).GetResources(); len(got) != 1 {
			t.Errorf("the owed endpoints response has %d resources, want 1", len(got))
		}
		eds.Sent(r)
	default:
		t.Fatal("the endpoints owed to a changed cluster were not sent")
	}
	// Once sent, nothing more is owed.
	cancelEDS()
	c.WatchSotw(node, resourcev3.EndpointType, endpoints.Version, eds, into(out))
	select {
	case r := <-out:
		t.Errorf("endpoints sent again after they were paid: %d resources", len(onWire(t, r).GetResources()))
	default:
	}
}
