package xds

// The cache hands the server responses whose resources are already encoded
// and shared by every proxy that gets the same set (cache/wire.go): a
// DiscoveryResponse or DeltaDiscoveryResponse whose resources are its
// unknown fields. gRPC's own codec would copy those bytes into a new buffer
// for every stream (1.4 MiB per proxy at 1000 services), and the copy would
// sit in memory until the transport has written it. This codec encodes only
// the response's own fields and appends the shared bytes as a buffer of
// their own, which gRPC writes to the connection and never frees or
// changes. Everything else, requests included, goes through gRPC's codec.

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// sharedBytesCodec is gRPC's proto codec, except for responses that carry
// pre-encoded resources.
type sharedBytesCodec struct{ encoding.CodecV2 }

func newSharedBytesCodec() sharedBytesCodec {
	return sharedBytesCodec{encoding.GetCodecV2(proto.Name)}
}

func (c sharedBytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *discoveryv3.DiscoveryResponse:
		if shared := m.ProtoReflect().GetUnknown(); len(shared) > 0 && len(m.GetResources()) == 0 {
			return c.withShared(&discoveryv3.DiscoveryResponse{
				VersionInfo:  m.GetVersionInfo(),
				Canary:       m.GetCanary(),
				TypeUrl:      m.GetTypeUrl(),
				Nonce:        m.GetNonce(),
				ControlPlane: m.GetControlPlane(),
			}, shared)
		}
	case *discoveryv3.DeltaDiscoveryResponse:
		if shared := m.ProtoReflect().GetUnknown(); len(shared) > 0 && len(m.GetResources()) == 0 {
			return c.withShared(&discoveryv3.DeltaDiscoveryResponse{
				SystemVersionInfo:    m.GetSystemVersionInfo(),
				TypeUrl:              m.GetTypeUrl(),
				RemovedResources:     m.GetRemovedResources(),
				RemovedResourceNames: m.GetRemovedResourceNames(),
				Nonce:                m.GetNonce(),
				ControlPlane:         m.GetControlPlane(),
			}, shared)
		}
	}
	return c.CodecV2.Marshal(v)
}

// withShared encodes own and appends shared after it, uncopied.
func (c sharedBytesCodec) withShared(own any, shared []byte) (mem.BufferSlice, error) {
	out, err := c.CodecV2.Marshal(own)
	if err != nil {
		return nil, err
	}
	// A SliceBuffer's Free does nothing, so gRPC leaves the shared bytes alone.
	return append(out, mem.SliceBuffer(shared)), nil
}
