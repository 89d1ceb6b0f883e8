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
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
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
