package xds

import (
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/minimesh/minimesh/cache"
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
	odd := testClusters(t, 1)[0]
	odd.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	for _, m := range []proto.Message{
		&discoveryv3.DiscoveryRequest{VersionInfo: "v1", ResourceNames: []string{"a", "b"}, TypeUrl: resourcev3.EndpointType},
		// A listed resource with fields of its own that the codec cannot
		// split: the whole response as gRPC's codec encodes it.
		&discoveryv3.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{odd}, TypeUrl: resourcev3.ClusterType, Nonce: "1"},
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

// A response that lists resources as messages (some of a set: what
// changed) sends each resource's value as the very bytes it holds, not a
// copy, and a proxy decodes it as the response itself; the response is
// left as it was given.
func TestCodecSendsListedResourcesUncopied(t *testing.T) {
	codec := newSharedBytesCodec()
	anys := testClusters(t, 3)
	sotw := &discoveryv3.DiscoveryResponse{VersionInfo: "v1", Resources: anys, TypeUrl: resourcev3.ClusterType, Nonce: "7"}
	// What minimesh sends (a name, a version), then every other field a
	// Resource can have.
	resources := []*discoveryv3.Resource{
		{Name: "a", Version: "x", Resource: anys[0]},
		{Name: "b", Version: "y", Resource: anys[1], Aliases: []string{"alias", "other"}, Ttl: durationpb.New(time.Second)},
		{Resource: anys[2], ResourceName: &discoveryv3.ResourceName{Name: "c"}, CacheControl: &discoveryv3.Resource_CacheControl{DoNotCache: true},
			Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": {Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("v")}}}}},
	}
	resources[2].ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "unknown"))
	delta := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: "v1", Resources: resources, TypeUrl: resourcev3.ClusterType,
		Nonce: "8", RemovedResources: []string{"gone"}}
	for _, m := range []proto.Message{sotw, delta} {
		want := proto.Clone(m)
		out, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m, want) {
			t.Errorf("%T: the codec changed the response it was given", m)
		}
		for i, a := range anys {
			if !slices.ContainsFunc(out, func(b mem.Buffer) bool {
				data := b.ReadOnlyData()
				return unsafe.SliceData(data) == unsafe.SliceData(a.GetValue()) && len(data) == len(a.GetValue())
			}) {
				t.Errorf("%T: resource %d was copied, not sent as the bytes it holds", m, i)
			}
		}
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(out.Materialize(), got); err != nil {
			t.Fatalf("%T: the encoded response does not decode: %v", m, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%T: decoded %v, want %v", m, got, want)
		}
		out.Free()
	}
}

// A request decodes as with proto.Unmarshal, its names shared with every
// request that names the same list.
func TestCodecInternsRequestNames(t *testing.T) {
	codec := newSharedBytesCodec()
	decode := func(m *discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryRequest, error) {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := &discoveryv3.DiscoveryRequest{}
		return got, codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
	}
	names := []string{"outbound|80|v2|b.default.svc.cluster.local", "outbound|80|v1|a.default.svc.cluster.local", "x", "x"}
	req := &discoveryv3.DiscoveryRequest{
		VersionInfo:   "v1",
		Node:          &corev3.Node{Id: "my-app-v1.default", UserAgentName: "envoy"},
		ResourceNames: names,
		TypeUrl:       resourcev3.EndpointType,
		ResponseNonce: "3",
		ErrorDetail:   &rpcstatus.Status{Code: 3, Message: "rejected"},
	}
	first, err := decode(req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, req) {
		t.Fatalf("decoded %v, want %v", first, req)
	}
	second, err := decode(&discoveryv3.DiscoveryRequest{ResourceNames: slices.Clone(names), TypeUrl: resourcev3.EndpointType, ResponseNonce: "4"})
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(first.GetResourceNames()) != unsafe.SliceData(second.GetResourceNames()) {
		t.Errorf("two requests naming the same list got two copies of it")
	}
	if other, err := decode(&discoveryv3.DiscoveryRequest{ResourceNames: names[:2]}); err != nil || !slices.Equal(other.GetResourceNames(), names[:2]) {
		t.Errorf("a shorter list decodes as %v (%v), want %v", other.GetResourceNames(), err, names[:2])
	}
	if none, err := decode(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}); err != nil || none.GetResourceNames() != nil {
		t.Errorf("a request naming nothing decodes with names %v (%v)", none.GetResourceNames(), err)
	}

	// The stream interns the names again: that finds the same list.
	if cache.InternNames(first.GetResourceNames()) != cache.InternNames(second.GetResourceNames()) {
		t.Errorf("interning a decoded list again gives another Names")
	}

	// A message split across buffers, with its names in two blocks (which
	// protobuf allows), decodes the same.
	var b []byte
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, "a")
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, resourcev3.RouteType)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, "b")
	split := &discoveryv3.DiscoveryRequest{}
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:5]), mem.SliceBuffer(b[5:])}, split); err != nil {
		t.Fatal(err)
	}
	if want := (&discoveryv3.DiscoveryRequest{ResourceNames: []string{"a", "b"}, TypeUrl: resourcev3.RouteType}); !proto.Equal(split, want) {
		t.Errorf("names in two blocks decode as %v, want %v", split, want)
	}

	// Names must be UTF-8, as proto3 strings are.
	bad := protowire.AppendTag(nil, 3, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0xff, 0xfe})
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &discoveryv3.DiscoveryRequest{}); err == nil {
		t.Error("a resource name that is not UTF-8 was accepted")
	}
}

// A delta request decodes as with proto.Unmarshal, the names it
// subscribes to shared with every request subscribing to the same list;
// the names it unsubscribes from are its own.
func TestCodecInternsDeltaSubscriptions(t *testing.T) {
	codec := newSharedBytesCodec()
	decode := func(m *discoveryv3.DeltaDiscoveryRequest) *discoveryv3.DeltaDiscoveryRequest {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := &discoveryv3.DeltaDiscoveryRequest{}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	names := []string{"outbound|80|v1|a.default.svc.cluster.local", "outbound|80|v2|a.default.svc.cluster.local"}
	req := &discoveryv3.DeltaDiscoveryRequest{
		Node:                     &corev3.Node{Id: "my-app-v1.default"},
		TypeUrl:                  resourcev3.EndpointType,
		ResourceNamesSubscribe:   names,
		ResourceNamesUnsubscribe: []string{"gone"},
		InitialResourceVersions:  map[string]string{"outbound|80|v1|a.default.svc.cluster.local": "abc"},
		ResponseNonce:            "7",
	}
	first := decode(req)
	if !proto.Equal(first, req) {
		t.Fatalf("decoded %v, want %v", first, req)
	}
	second := decode(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: slices.Clone(names)})
	if unsafe.SliceData(first.GetResourceNamesSubscribe()) != unsafe.SliceData(second.GetResourceNamesSubscribe()) {
		t.Errorf("two delta requests subscribing to the same list got two copies of it")
	}
	if bad := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{0xff}); codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &discoveryv3.DeltaDiscoveryRequest{}) == nil {
		t.Error("a subscribed name that is not UTF-8 was accepted")
	}
}

// Every field of a delta Resource is one deltaResourceHeader writes: a
// field added by a newer go-control-plane must be added there too, or it
// would not be sent.
func TestDeltaResourceFieldsAreKnown(t *testing.T) {
	var written []protowire.Number
	for _, n := range []protowire.Number{resourceVersionField, resourceAnyField, resourceNameField, resourceAliasesField} {
		written = append(written, n)
	}
	for _, fd := range resourceMessageFields {
		written = append(written, fd.Number())
	}
	fields := (&discoveryv3.Resource{}).ProtoReflect().Descriptor().Fields()
	var all []protowire.Number
	for i := range fields.Len() {
		all = append(all, fields.Get(i).Number())
	}
	slices.Sort(all)
	slices.Sort(written)
	if !slices.Equal(all, written) {
		t.Errorf("discovery.v3.Resource has fields %v; deltaResourceHeader writes %v", all, written)
	}
}

// A string that is not UTF-8 is refused, as proto.Marshal refuses it: a
// receiver would refuse the whole response.
func TestCodecRefusesInvalidUTF8(t *testing.T) {
	codec := newSharedBytesCodec()
	a := testClusters(t, 1)[0]
	for _, r := range []*discoveryv3.Resource{
		{Name: "bad\xff", Version: "x", Resource: a},
		{Name: "a", Version: "\xfe", Resource: a},
		{Name: "a", Version: "x", Aliases: []string{"ok", "bad\xff"}, Resource: a},
	} {
		m := &discoveryv3.DeltaDiscoveryResponse{Resources: []*discoveryv3.Resource{r}, TypeUrl: resourcev3.ClusterType}
		if out, err := codec.Marshal(m); err == nil {
			t.Errorf("%v: encoded (%d bytes), want an error", r, out.Len())
		}
	}
}

// BenchmarkCodecDeltaResponse encodes a delta response that lists 3000
// resources, as a PeerAuthentication edit of the large mesh sends to each
// of 2000 proxies.
func BenchmarkCodecDeltaResponse(b *testing.B) {
	codec := newSharedBytesCodec()
	value := make([]byte, 400)
	var resources []*discoveryv3.Resource
	for i := range 3000 {
		name := fmt.Sprintf("outbound|80|v%d|svc-%04d.default.svc.cluster.local", i%2+1, i/2)
		resources = append(resources, &discoveryv3.Resource{Name: name, Version: "0123456789abcdef",
			Resource: &anypb.Any{TypeUrl: resourcev3.ClusterType, Value: value}})
	}
	m := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: "v1", Resources: resources, TypeUrl: resourcev3.ClusterType, Nonce: "8"}
	b.ReportAllocs()
	for b.Loop() {
		out, err := codec.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		out.Free()
	}
}
