package translator

// Golden tests: each testdata/in/<case>.yaml (Istio YAML) is translated for
// a fixed set of proxies and compared with testdata/out/<case>.<type>.yaml.
// Run `go test ./translator -update` to rewrite the outputs, then review the
// diff like code. Outputs no case produces any more are deleted.
//
// A case whose name starts with "transparent" is translated for Envoy
// sidecars in transparent capture mode (node metadata INTERCEPTION_MODE:
// REDIRECT, as an injected Kubernetes pod sends); every other case for
// sidecars in explicit mode. Every proxy's resources must also pass the
// cache's checks, the ones a snapshot passes before it is published.

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/cache"
	"github.com/minimesh/minimesh/mesh"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/out")

// goldenTypes are the output files per case, by type.
var goldenTypes = map[string]string{
	"clusters":  resourcev3.ClusterType,
	"endpoints": resourcev3.EndpointType,
	"listeners": resourcev3.ListenerType,
	"routes":    resourcev3.RouteType,
	"secrets":   resourcev3.SecretType,
}

// goldenProxies are the proxies every case is translated for: the Envoy
// sidecar of each workload, an Envoy outside the mesh, a proxyless gRPC
// client dialing every service by short and full name, and a gRPC server
// for each workload port.
func goldenProxies(snap *mesh.Snapshot, capture CaptureMode) []Proxy {
	// envoyMetadata is what an Envoy sidecar of the case puts in its node.
	var envoyMetadata *structpb.Struct
	if capture == CaptureTransparent {
		envoyMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			NodeInterceptionModeKey: structpb.NewStringValue("REDIRECT"),
		}}
	}
	var out []Proxy
	for _, w := range snap.Workloads {
		p := NewProxy(&corev3.Node{Id: w.ID(), UserAgentName: "envoy", Metadata: envoyMetadata}, snap, "default")
		// Stand-ins for the certificates the CA would issue: the translator
		// passes them through to SDS as they are.
		p.Certificate = &Certificate{
			ChainPEM: []byte("chain of spiffe://cluster.local/ns/" + w.Namespace + "/sa/" + w.ServiceAccount),
			KeyPEM:   []byte("key of " + w.ID()),
		}
		p.TrustBundlePEM = []byte("mesh roots")
		out = append(out, p)
	}
	out = append(out, NewProxy(&corev3.Node{Id: "client.default", UserAgentName: "envoy", Metadata: envoyMetadata}, snap, "default"))

	grpcClient := NewProxy(&corev3.Node{Id: "grpc-client.default", UserAgentName: "gRPC Go",
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"NAMESPACE": structpb.NewStringValue("default")}}}, snap, "default")
	for _, s := range snap.Services {
		short := strings.SplitN(s.Hostname, ".", 2)[0]
		grpcClient.ListenerNames = append(grpcClient.ListenerNames, short, VirtualHostName(s.Hostname, s.Ports[0].Number))
	}
	grpcClient.ListenerNames = append(grpcClient.ListenerNames, "no-such-service")
	out = append(out, grpcClient)

	for _, w := range snap.Workloads {
		srv := NewProxy(&corev3.Node{Id: w.ID(), UserAgentName: "gRPC Go"}, snap, "default")
		srv.ID = w.ID() + " (grpc server)"
		var sorted []uint32
		for _, in := range NewIndex(snap, Options{}).inboundPorts(w) {
			sorted = append(sorted, in.port)
		}
		for _, n := range sorted {
			srv.ListenerNames = append(srv.ListenerNames, GRPCServerListenerName("0.0.0.0:"+itoa(n)))
		}
		if len(srv.ListenerNames) > 0 {
			out = append(out, srv)
		}
	}
	return out
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata/in: %v", err)
	}
	want := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs, diags, err := mesh.Decode(filepath.Base(in), data, "default")
			if err != nil {
				t.Fatal(err)
			}
			snap, more := mesh.Build(objs, mesh.Options{})
			for _, d := range append(diags, more...) {
				if d.Severity == mesh.SeverityError {
					t.Fatalf("input has an error: %v", d)
				}
			}
			capture := CaptureExplicit
			if strings.HasPrefix(name, "transparent") {
				capture = CaptureTransparent
			}
			outputs := map[string][]any{} // short type -> per-proxy docs
			for _, p := range goldenProxies(snap, capture) {
				res, err := Translate(snap, p, Options{TrustDomain: "cluster.local"})
				if err != nil {
					t.Fatalf("translate %s: %v", p.ID, err)
				}
				byType := res.ByType()
				if err := cache.Check(byType); err != nil {
					t.Errorf("proxy %s: the cache would refuse this snapshot: %v", p.ID, err)
				}
				for short, typeURL := range goldenTypes {
					outputs[short] = append(outputs[short], proxyDoc(t, p, byType[typeURL]))
				}
			}
			for short := range goldenTypes {
				path := filepath.Join("testdata", "out", name+"."+short+".yaml")
				want[path] = true
				got, err := yaml.Marshal(outputs[short])
				if err != nil {
					t.Fatal(err)
				}
				compareGolden(t, path, got)
			}
		})
	}
	if *update {
		stale, _ := filepath.Glob("testdata/out/*.yaml")
		for _, p := range stale {
			if !want[p] {
				os.Remove(p)
			}
		}
	}
}

// proxyDoc renders one proxy's resources of one type: protojson, then YAML.
func proxyDoc(t *testing.T, p Proxy, resources []types.Resource) map[string]any {
	t.Helper()
	var list []any
	for _, r := range resources {
		if v, ok := r.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				t.Fatalf("proxy %s: invalid resource: %v", p.ID, err)
			}
		}
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		list = append(list, v)
	}
	doc := map[string]any{"proxy": p.ID, "flavor": string(p.Flavor), "resources": list}
	if p.Capture != CaptureExplicit {
		doc["capture"] = p.Capture.String()
	}
	return doc
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./translator -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the translation (run go test ./translator -update and review the diff):\n%s",
			path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(uint32(i+1)) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}
