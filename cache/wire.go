package cache

// Sending a resource costs a marshal, and nearly every proxy gets the same
// resources: at 1000 services, 1.4 MiB of identical clusters and endpoints
// per proxy. go-control-plane's own snapshot cache marshals every resource
// of every response again, for every proxy.
//
// So each resource is marshalled once, when it is hashed for its version
// (one Memo entry per message), and the bytes are kept ready to send: an
// anypb.Any around them (what a state-of-the-world response lists) inside a
// discovery Resource with the resource's name and version (what a delta
// response lists). The bytes are exactly the deterministic encoding that
// the version is the hash of. These messages are shared by every set,
// response and stream that sends the resource, so they are read only:
// gRPC marshals them concurrently from many streams, which only reads.
//
// The cache's own Snapshot (what Get returns, what the debug endpoints and
// tests read) keeps the real messages.

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// wireResource is r ready to send: b, its deterministic encoding, with its
// name, version and type URL.
func wireResource(r types.Resource, version string, b []byte) *discoveryv3.Resource {
	return &discoveryv3.Resource{
		Name:    cachev3.GetResourceName(r),
		Version: version,
		Resource: &anypb.Any{
			TypeUrl: resourcev3.APITypePrefix + string(proto.MessageName(r)),
			Value:   b,
		},
	}
}

// A response that sends a whole set to many proxies is encoded once too.
// Both discovery responses list their resources as field 2 (the Anys of a
// state-of-the-world response, the Resources of a delta one), and protobuf
// lets fields come in any order, so the list is encoded once per set and
// attached to each response as its unknown fields, after which the
// response's own fields (version, type, nonce) are only a few bytes. The
// xDS server's codec sends such a response as those few bytes followed by
// the shared list, without copying it (xds/codec.go); any other marshal
// copies the unknown fields like any others, with the same result.

// resourcesField is the field number of the resources of both
// DiscoveryResponse and DeltaDiscoveryResponse.
const resourcesField protowire.Number = 2

// encodeResources is msgs encoded as the repeated field 2 of a discovery
// response.
func encodeResources[M proto.Message](msgs []M) []byte {
	opts := proto.MarshalOptions{Deterministic: true}
	size := 0
	for _, m := range msgs {
		n := opts.Size(m)
		size += protowire.SizeTag(resourcesField) + protowire.SizeBytes(n)
	}
	b := make([]byte, 0, size)
	for _, m := range msgs {
		b = protowire.AppendTag(b, resourcesField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(opts.Size(m)))
		var err error
		if b, err = opts.MarshalAppend(b, m); err != nil {
			// The messages were marshalled when they were hashed.
			panic(fmt.Sprintf("encoding a response's resources: %v", err))
		}
	}
	return slices.Clip(b)
}

// withEncodedResources attaches resources encoded by encodeResources to m,
// which must not list resources of its own. enc is shared: it is never
// written, and its capacity is its length, so nothing appends to it.
func withEncodedResources[M proto.Message](m M, enc []byte) M {
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(enc))
	return m
}

// onSecondUse is a list's encoding as a response's resources, made the
// second time the list is sent whole: a list only one proxy gets (its own
// listeners) is not worth a second copy of its bytes.
type onSecondUse struct {
	used atomic.Bool
	once sync.Once
	enc  []byte
}

// get returns nil the first time, and encode's result, made once, after.
func (o *onSecondUse) get(encode func() []byte) []byte {
	if !o.used.Swap(true) {
		return nil
	}
	o.once.Do(func() { o.enc = encode() })
	return o.enc
}
