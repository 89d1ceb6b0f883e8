package cache_test

import (
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/minimesh/minimesh/cache"
)

var hexVersion = regexp.MustCompile(`^[0-9a-f]{16}$`)    // a resource's version
var hexSetVersion = regexp.MustCompile(`^[0-9a-f]{32}$`) // a type's version

func newSnapshot(t *testing.T, rs resources) *cache.Snapshot {
	t.Helper()
	s, err := cache.NewSnapshot(rs)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return s
}

// reversed returns the same resources, each list in reverse order.
func reversed(rs resources) resources {
	out := resources{}
	for t, list := range rs {
		out[t] = slices.Clone(list)
		slices.Reverse(out[t])
	}
	return out
}

// versionMaps returns the per-resource versions of every type.
func versionMaps(s *cache.Snapshot) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, t := range cache.Types {
		out[t] = s.GetVersionMap(t)
	}
	return out
}

func TestVersionsAreHexAndCoverEveryType(t *testing.T) {
	s := newSnapshot(t, valid())
	vs := s.Versions()
	if got, want := slices.Sorted(maps.Keys(vs)), slices.Sorted(slices.Values(cache.Types)); !slices.Equal(got, want) {
		t.Errorf("Versions has types %v, want %v", got, want)
	}
	for _, typ := range cache.Types {
		if v := s.GetVersion(typ); !hexSetVersion.MatchString(v) || v != vs[typ] {
			t.Errorf("%s: GetVersion = %q, Versions = %q; want the same 32 hex digits", cache.ShortType(typ), v, vs[typ])
		}
		for name, v := range s.GetVersionMap(typ) {
			if !hexVersion.MatchString(v) {
				t.Errorf("%s %q: version %q, want 16 hex digits", cache.ShortType(typ), name, v)
			}
		}
		if got, want := len(s.GetVersionMap(typ)), len(valid()[typ]); got != want {
			t.Errorf("%s: %d resource versions, want %d", cache.ShortType(typ), got, want)
		}
		if got, want := len(s.GetResources(typ)), len(valid()[typ]); got != want {
			t.Errorf("%s: %d resources, want %d", cache.ShortType(typ), got, want)
		}
	}
	if got := s.GetVersion("type.googleapis.com/nothing"); got != "" {
		t.Errorf("version of an unknown type = %q, want empty", got)
	}
}

// The same content gives the same versions: in another order, built again
// from scratch, computed again.
func TestVersionsDependOnContentOnly(t *testing.T) {
	a := newSnapshot(t, valid())
	for name, rs := range map[string]resources{
		"built again":      valid(),
		"in reverse order": reversed(valid()),
	} {
		b := newSnapshot(t, rs)
		for _, typ := range cache.Types {
			if a.GetVersion(typ) != b.GetVersion(typ) {
				t.Errorf("%s: %s version %s, was %s", name, cache.ShortType(typ), b.GetVersion(typ), a.GetVersion(typ))
			}
			if !maps.Equal(a.GetVersionMap(typ), b.GetVersionMap(typ)) {
				t.Errorf("%s: %s resource versions %v, were %v", name, cache.ShortType(typ), b.GetVersionMap(typ), a.GetVersionMap(typ))
			}
		}
	}
	for _, r := range valid()[resourcev3.ClusterType] {
		v1, err1 := cache.HashResource(r)
		v2, err2 := cache.HashResource(r)
		if err1 != nil || err2 != nil || v1 != v2 || !hexVersion.MatchString(v1) {
			t.Errorf("HashResource twice: %q, %v and %q, %v", v1, err1, v2, err2)
		}
	}
}

// Changing one resource changes its version and its type's, nothing else.
func TestVersionsFollowChanges(t *testing.T) {
	before := newSnapshot(t, valid())

	rs := valid()
	changed := edsCluster(v2Cluster, "")
	changed.ConnectTimeout = durationpb.New(2 * time.Second)
	rs.replace(t, resourcev3.ClusterType, v2Cluster, changed)
	after := newSnapshot(t, rs)

	for _, typ := range cache.Types {
		same := before.GetVersion(typ) == after.GetVersion(typ)
		if typ == resourcev3.ClusterType && same {
			t.Errorf("Cluster version unchanged (%s) after a cluster changed", after.GetVersion(typ))
		}
		if typ != resourcev3.ClusterType && !same {
			t.Errorf("%s version changed from %s to %s, but only a cluster did", cache.ShortType(typ), before.GetVersion(typ), after.GetVersion(typ))
		}
	}
	bv, av := versionMaps(before), versionMaps(after)
	for _, typ := range cache.Types {
		for name, v := range bv[typ] {
			if typ == resourcev3.ClusterType && name == v2Cluster {
				if av[typ][name] == v {
					t.Errorf("version of the changed cluster stayed %s", v)
				}
				continue
			}
			if av[typ][name] != v {
				t.Errorf("%s %q: version changed from %s to %s, but it did not change", cache.ShortType(typ), name, v, av[typ][name])
			}
		}
	}

	// Removing a resource or adding one changes the type's version too.
	rs = valid()
	rs.remove(t, resourcev3.RouteType, grpcRoutes)
	rs.remove(t, resourcev3.ListenerType, apiListener)
	removed := newSnapshot(t, rs)
	for _, typ := range []string{resourcev3.RouteType, resourcev3.ListenerType} {
		if removed.GetVersion(typ) == before.GetVersion(typ) {
			t.Errorf("%s version unchanged after removing one", cache.ShortType(typ))
		}
	}
	rs = valid()
	rs[resourcev3.ClusterType] = append(rs[resourcev3.ClusterType], staticCluster("extra", 9090))
	if added := newSnapshot(t, rs); added.GetVersion(resourcev3.ClusterType) == before.GetVersion(resourcev3.ClusterType) {
		t.Error("Cluster version unchanged after adding one")
	}
}

// An empty type has a version too, the same every time, so that a proxy
// asking for a type with nothing in it gets an answer it can ack.
func TestEmptyTypeVersion(t *testing.T) {
	a := newSnapshot(t, resources{resourcev3.ClusterType: {staticCluster("a", 80)}})
	b := newSnapshot(t, resources{resourcev3.ClusterType: {staticCluster("b", 80)}})
	if v := a.GetVersion(resourcev3.SecretType); !hexSetVersion.MatchString(v) || v != b.GetVersion(resourcev3.SecretType) {
		t.Errorf("empty Secret type: versions %q and %q, want the same 32 hex digits", v, b.GetVersion(resourcev3.SecretType))
	}
}

// The snapshot serves the resources it was given, by name.
func TestSnapshotResources(t *testing.T) {
	s := newSnapshot(t, valid())
	got := s.GetResourcesAndTTL(resourcev3.ClusterType)[v1Cluster]
	if cl, ok := got.Resource.(*clusterv3.Cluster); !ok || cl.GetName() != v1Cluster || got.TTL != nil {
		t.Errorf("cluster %q = %v (TTL %v)", v1Cluster, got.Resource, got.TTL)
	}
	if r := s.GetResources(resourcev3.EndpointType)[dbService]; r == nil {
		t.Errorf("no endpoints named %q", dbService)
	}
}
