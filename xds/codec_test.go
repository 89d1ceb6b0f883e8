package xds

import (
	"testing"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

func testClusters(t *testing.T, n int) []*anypb.Any {
	t.Helper()
	var out []*anypb.Any
	for i := range n {
		a, err := anypb.New(&clusterv3.Cluster{Name: "outbound|80||svc-" + string(rune('a'+i)) + ".default.svc.cluster.local"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// sharedPart returns the encoding of m's resources alone: what the cache
// attaches as unknown fields.
func sharedPart(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A response with pre-encoded resources goes out as its own fields plus the
// very bytes it was given, and a proxy decodes it as the plain response.
func TestCodecSendsSharedResourcesUncopied(t *testing.T) {
	codec := newSharedBytesCodec()
	anys := testClusters(t, 3)
	shared := sharedPart(t, &discoveryv3.DiscoveryResponse{Resources: anys})
	want := &discoveryv3.DiscoveryResponse{VersionInfo: "v1", Resources: anys, TypeUrl: resourcev3.ClusterType, Nonce: "7"}

	m := &discoveryv3.DiscoveryResponse{VersionInfo: "v1", TypeUrl: resourcev3.ClusterType, Nonce: "7"}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(shared))
	out, err := codec.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	last := out[len(out)-1].ReadOnlyData()
	if unsafe.SliceData(last) != unsafe.SliceData(shared) || len(last) != len(shared) {
		t.Errorf("the shared resources were copied: the last buffer is not the bytes given")
	}
	got := &discoveryv3.DiscoveryResponse{}
	if err := proto.Unmarshal(out.Materialize(), got); err != nil {
		t.Fatalf("the encoded response does not decode: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	out.Free()
	if string(shared) != string(sharedPart(t, &discoveryv3.DiscoveryResponse{Resources: anys})) {
		t.Errorf("freeing the encoded response changed the shared bytes")
	}

	// Delta responses the same way.
	var resources []*discoveryv3.Resource
	for i, a := range anys {
		resources = append(resources, &discoveryv3.Resource{Name: string(rune('a' + i)), Version: "x", Resource: a})
	}
	sharedDelta := sharedPart(t, &discoveryv3.DeltaDiscoveryResponse{Resources: resources})
	wantDelta := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: "v2", Resources: resources, TypeUrl: resourcev3.ClusterType, RemovedResources: []string{"gone"}, Nonce: "8"}
	d := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: "v2", TypeUrl: resourcev3.ClusterType, RemovedResources: []string{"gone"}, Nonce: "8"}
	d.ProtoReflect().SetUnknown(protoreflect.RawFields(sharedDelta))
	out, err = codec.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if last := out[len(out)-1].ReadOnlyData(); unsafe.SliceData(last) != unsafe.SliceData(sharedDelta) {
		t.Errorf("delta: the shared resources were copied")
	}
	gotDelta := &discoveryv3.DeltaDiscoveryResponse{}
	if err := proto.Unmarshal(out.Materialize(), gotDelta); err != nil {
		t.Fatalf("the encoded delta response does not decode: %v", err)
	}
	if !proto.Equal(gotDelta, wantDelta) {
		t.Errorf("delta: decoded %v, want %v", gotDelta, wantDelta)
	}
}

// Anything else is gRPC's proto encoding, byte for byte.
func TestCodecEncodesOtherMessagesAsProto(t *testing.T) {
	codec := newSharedBytesCodec()
	for _, m := range []proto.Message{
		&discoveryv3.DiscoveryResponse{VersionInfo: "v1", Resources: testClusters(t, 2), TypeUrl: resourcev3.ClusterType, Nonce: "1"},
		&discoveryv3.DiscoveryRequest{VersionInfo: "v1", ResourceNames: []string{"a", "b"}, TypeUrl: resourcev3.EndpointType},
	} {
		out, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(out.Materialize()) != string(want) {
			t.Errorf("%T: encoding differs from proto.Marshal", m)
		}
	}
}
