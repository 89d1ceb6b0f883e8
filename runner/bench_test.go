package runner

// Benchmarks of the work a mesh change costs: translation and snapshot
// building (checks + content hashing) for a synthetic mesh of 1000 services
// x 2 subsets x 1 VirtualService. They print figures and assert nothing.
//
//	go test -run '^$' -bench . -benchmem ./runner/

import (
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/internal/synth"
	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/translator"
)

// synthMesh builds the 1000-service mesh through the real decode path.
func synthMesh(b *testing.B, services int) *mesh.Snapshot {
	b.Helper()
	return synthSnapshot(b, synth.YAML(services, "default"))
}

// synthSnapshot builds a mesh from YAML through the real decode path.
func synthSnapshot(b *testing.B, yaml []byte) *mesh.Snapshot {
	b.Helper()
	objs, diags, err := mesh.Decode("synth.yaml", yaml, "default")
	if err != nil {
		b.Fatal(err)
	}
	snap, more := mesh.Build(objs, mesh.Options{})
	for _, d := range append(diags, more...) {
		if d.Severity == mesh.SeverityError {
			b.Fatal(d)
		}
	}
	return snap
}

func envoyProxy(snap *mesh.Snapshot, id string) translator.Proxy {
	return translator.NewProxy(&corev3.Node{Id: id, UserAgentName: "envoy"}, snap, "default")
}

// BenchmarkEnvoyProxy: one Envoy sidecar's full config (4000 clusters,
// 4000 endpoint sets, 1 route configuration with 1000 virtual hosts).
func BenchmarkEnvoyProxy(b *testing.B) {
	snap := synthMesh(b, 1000)
	ix := translator.NewIndex(snap, translator.Options{})
	p := envoyProxy(snap, "svc-0000-v1.default")
	b.Run("translate", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := ix.Translate(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("translate+snapshot/shared-memo", func(b *testing.B) {
		// What every proxy after the first costs: shared clusters are
		// hashed and validated once per mesh snapshot.
		memo := cache.NewMemo()
		for i := 0; i < b.N; i++ {
			res, err := ix.Translate(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cache.NewSnapshotMemo(res.ByType(), memo); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("translate+snapshot/shared-runs", func(b *testing.B) {
		// What the runner does: whole sets shared between proxies whose
		// shared runs and own resources are the same.
		memo := cache.NewMemo()
		for i := 0; i < b.N; i++ {
			res, err := ix.Translate(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cache.NewSnapshotFrom(res, sharedRuns(res), memo); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("translate+snapshot/first", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			res, err := ix.Translate(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cache.NewSnapshot(res.ByType()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGRPCClient: a proxyless gRPC client of one service.
func BenchmarkGRPCClient(b *testing.B) {
	snap := synthMesh(b, 1000)
	ix := translator.NewIndex(snap, translator.Options{})
	p := translator.NewProxy(&corev3.Node{Id: "c.default", UserAgentName: "gRPC Go"}, snap, "default")
	p.ListenerNames = []string{"svc-0500"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := ix.Translate(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cache.NewSnapshot(res.ByType()); err != nil {
			b.Fatal(err)
		}
	}
}

// Benchmark1000Proxies: a mesh change rebuilt for 1000 connected Envoy
// sidecars (translate + check + hash + publish each), as Runner.Update does.
func Benchmark1000Proxies(b *testing.B) {
	snap := synthMesh(b, 1000)
	c := cache.New(nil)
	r := New(c, nopLogger(), Options{DefaultNamespace: "default"})
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("svc-%04d-v1.default", i)
		if err := r.Connect(&corev3.Node{Id: id, UserAgentName: "envoy"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Update(b.Context(), snap)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/1000, "ms/proxy")
}

// BenchmarkEndpointChange1000Proxies: a workload added to and removed from
// one service, by turns, with 1000 Envoy sidecars connected (what the load
// generator's endpoint change costs the runner, without the network).
func BenchmarkEndpointChange1000Proxies(b *testing.B) {
	o := synth.Options{Services: 1000, Namespace: "default"}
	objs := synth.Generate(o)
	added := synth.WorkloadEntry(synth.Workload{Name: "svc-0000-v1-bench", Namespace: "default",
		Service: synth.ServiceName(0), Version: "v1", Address: "10.254.0.1"})
	snaps := []*mesh.Snapshot{synthSnapshot(b, synth.Join(objs)), synthSnapshot(b, synth.Join(append(objs, added)))}
	c := cache.New(nil)
	r := New(c, nopLogger(), Options{DefaultNamespace: "default"})
	r.Update(b.Context(), snaps[0])
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("svc-%04d-v1.default", i)
		if err := r.Connect(&corev3.Node{Id: id, UserAgentName: "envoy"}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		i++
		r.Update(b.Context(), snaps[i%2])
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(i)/1000, "µs/proxy")
}
