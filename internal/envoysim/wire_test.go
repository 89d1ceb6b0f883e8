package envoysim

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// A response read off the wire has the fields and resources proto would
// decode, each resource decoded once per distinct content.
func TestResponseCodecReadsResponses(t *testing.T) {
	var anys []*anypb.Any
	for _, name := range []string{"a", "b", "a"} { // "a" twice: decoded once
		a, err := anypb.New(&clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}})
		if err != nil {
			t.Fatal(err)
		}
		anys = append(anys, a)
	}
	b, err := proto.Marshal(&discoveryv3.DiscoveryResponse{VersionInfo: "v7", Resources: anys, TypeUrl: resourcev3.ClusterType, Nonce: "12"})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	codec := newResponseCodec(d)
	r := &sotwResponse{}
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:9]), mem.SliceBuffer(b[9:])}, r); err != nil {
		t.Fatal(err)
	}
	if r.version != "v7" || r.typeURL != resourcev3.ClusterType || r.nonce != "12" || r.size != len(b) {
		t.Errorf("read version %q, type %q, nonce %q, size %d; want v7, %s, 12, %d", r.version, r.typeURL, r.nonce, r.size, resourcev3.ClusterType, len(b))
	}
	var names []string
	for _, res := range r.resources {
		if res.err != "" {
			t.Errorf("resource %s: %s", res.name, res.err)
		}
		names = append(names, res.name)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "a" || r.resources[0] != r.resources[2] {
		t.Errorf("resources %v, want a, b and the same a again", names)
	}
	if s := d.Stats(); s.Decoded != 2 || s.Reused != 1 {
		t.Errorf("decoder stats %+v, want 2 decoded and 1 reused", s)
	}

	// A truncated response is an error, not a short one.
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)-3])}, &sotwResponse{}); err == nil {
		t.Error("a truncated response was read without error")
	}
}

// A delta response read off the wire has the names, versions, removals and
// decoded resources proto would give.
func TestResponseCodecReadsDeltaResponses(t *testing.T) {
	a, err := anypb.New(&clusterv3.Cluster{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo:    "v3",
		Resources:            []*discoveryv3.Resource{{Name: "a", Version: "h1", Resource: a}},
		TypeUrl:              resourcev3.ClusterType,
		Nonce:                "9",
		RemovedResources:     []string{"gone"},
		RemovedResourceNames: []*discoveryv3.ResourceName{{Name: "gone-too"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &deltaResponse{}
	if err := newResponseCodec(NewDecoder()).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r); err != nil {
		t.Fatal(err)
	}
	if r.version != "v3" || r.typeURL != resourcev3.ClusterType || r.nonce != "9" || r.size != len(b) {
		t.Errorf("read version %q, type %q, nonce %q, size %d", r.version, r.typeURL, r.nonce, r.size)
	}
	if len(r.resources) != 1 || r.resources[0].name != "a" || r.misnamed != "" {
		t.Errorf("resources %+v (misnamed %q), want a", r.resources, r.misnamed)
	}
	if len(r.removed) != 2 || r.removed[0] != "gone" || r.removed[1] != "gone-too" {
		t.Errorf("removed %v, want gone and gone-too", r.removed)
	}

	// A resource listed under another name than its own is reported.
	b, err = proto.Marshal(&discoveryv3.DeltaDiscoveryResponse{
		Resources: []*discoveryv3.Resource{{Name: "b", Version: "h1", Resource: a}},
		TypeUrl:   resourcev3.ClusterType,
	})
	if err != nil {
		t.Fatal(err)
	}
	r = &deltaResponse{}
	if err := newResponseCodec(NewDecoder()).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.misnamed, `"b"`) || !strings.Contains(r.misnamed, `"a"`) {
		t.Errorf("cluster a listed as b: misnamed %q, want both names", r.misnamed)
	}
}

// A request with encoded names is the request proto would encode, and its
// names are encoded once per list.
func TestRequestNamesEncodedOnce(t *testing.T) {
	var names requestNames
	list := []string{"outbound|80|v1|a", "outbound|80|v2|a"}
	enc := names.encoded(resourcev3.EndpointType, list)
	if again := names.encoded(resourcev3.EndpointType, list); &again[0] != &enc[0] {
		t.Error("the same list was encoded again")
	}
	other := []string{"outbound|80|v1|a"}
	if got := names.encoded(resourcev3.EndpointType, other); len(got) >= len(enc) {
		t.Error("a new list got the old encoding")
	}
	req := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: "v1", ResponseNonce: "4"}
	out, err := newResponseCodec(nil).Marshal(&sotwRequest{req: req, names: enc})
	if err != nil {
		t.Fatal(err)
	}
	got := &discoveryv3.DiscoveryRequest{}
	if err := proto.Unmarshal(out.Materialize(), got); err != nil {
		t.Fatal(err)
	}
	want := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: "v1", ResponseNonce: "4", ResourceNames: list}
	if !proto.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}

	// Another simulated Envoy subscribing to the same names (a list of
	// its own) shares the one encoding.
	var second requestNames
	same := append([]string(nil), list...)
	if shared := second.encoded(resourcev3.EndpointType, same); &shared[0] != &enc[0] {
		t.Error("two simulated Envoys subscribing to the same names keep an encoding each")
	}
}
