package xds

// The cache hands the server responses whose resources are already encoded
// and shared by every proxy that gets the same set (cache/wire.go): a
// DiscoveryResponse or DeltaDiscoveryResponse whose resources are its
// unknown fields. gRPC's own codec would copy those bytes into a new buffer
// for every stream (1.4 MiB per proxy at 1000 services), and the copy would
// sit in memory until the transport has written it. This codec encodes only
// the response's own fields and appends the shared bytes as a buffer of
// their own, which gRPC writes to the connection and never frees or
// changes.
//
// The other way, an Envoy sidecar's EDS request names every cluster it
// has, 3000 at 1000 services: with state of the world, in every EDS ACK;
// with delta, in its first EDS request. Decoded as usual, that is 3000 new
// strings per request, for a list that is the same for every sidecar and
// every ACK. A DiscoveryRequest's resource_names, and a
// DeltaDiscoveryRequest's resource_names_subscribe, are instead looked up,
// as bytes, among the lists already seen (cache.InternNamesWire), and the
// request gets the shared list.
//
// Everything else goes through gRPC's codec.

import (
	"fmt"
	"unicode/utf8"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/minimesh/minimesh/cache"
)

// sharedBytesCodec is gRPC's proto codec, except for responses that carry
// pre-encoded resources.
type sharedBytesCodec struct{ encoding.CodecV2 }

func newSharedBytesCodec() sharedBytesCodec {
	return sharedBytesCodec{encoding.GetCodecV2(grpcproto.Name)}
}

func (c sharedBytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *discoveryv3.DiscoveryResponse:
		if len(m.GetResources()) == 0 {
			return c.withShared(m)
		}
	case *discoveryv3.DeltaDiscoveryResponse:
		if len(m.GetResources()) == 0 {
			return c.withShared(m)
		}
	}
	return c.CodecV2.Marshal(v)
}

// withShared encodes m's own fields, then appends its unknown fields (the
// shared resources) uncopied. m is the sender's, used by one goroutine:
// its unknown fields are set aside while its own fields are encoded.
func (c sharedBytesCodec) withShared(m proto.Message) (mem.BufferSlice, error) {
	r := m.ProtoReflect()
	shared := r.GetUnknown()
	if len(shared) == 0 {
		return c.CodecV2.Marshal(m)
	}
	r.SetUnknown(nil)
	out, err := c.CodecV2.Marshal(m)
	r.SetUnknown(shared)
	if err != nil {
		return nil, err
	}
	// A SliceBuffer's Free does nothing, so gRPC leaves the shared bytes alone.
	return append(out, mem.SliceBuffer(shared)), nil
}

func (c sharedBytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch req := v.(type) {
	case *discoveryv3.DiscoveryRequest:
		b, release := materialize(data)
		defer release()
		return unmarshalRequest(b, req, "DiscoveryRequest.resource_names", func(names []string) { req.ResourceNames = names })
	case *discoveryv3.DeltaDiscoveryRequest:
		b, release := materialize(data)
		defer release()
		return unmarshalRequest(b, req, "DeltaDiscoveryRequest.resource_names_subscribe", func(names []string) { req.ResourceNamesSubscribe = names })
	}
	return c.CodecV2.Unmarshal(data, v)
}

// resourceNamesField is both DiscoveryRequest.resource_names and
// DeltaDiscoveryRequest.resource_names_subscribe.
const resourceNamesField protowire.Number = 3

// unmarshalRequest decodes b into req, with the names of field 3 interned
// and given to setNames. The request's list of names is then shared with
// other requests: it must not be changed.
//
// Envoy and gRPC write a request's fields in order, so its names are one
// block of consecutive entries; that block is what is interned. Names
// spread among other fields (which protobuf allows) are decoded as usual.
func unmarshalRequest(b []byte, req proto.Message, field string, setNames func([]string)) error {
	whole := b
	rest := make([]byte, 0, 256)
	var block []byte // the names, as encoded
	blocks := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		if num != resourceNamesField || typ != protowire.BytesType {
			rest = append(rest, b[:n+m]...)
			b = b[n+m:]
			continue
		}
		// A block of names: this entry and the ones right after it.
		end := n + m
		for end < len(b) {
			num, typ, n := protowire.ConsumeTag(b[end:])
			if n < 0 || num != resourceNamesField || typ != protowire.BytesType {
				break
			}
			_, m := protowire.ConsumeBytes(b[end+n:])
			if m < 0 {
				return protowire.ParseError(m)
			}
			end += n + m
		}
		block, blocks = b[:end], blocks+1
		b = b[end:]
	}
	if blocks > 1 {
		return proto.Unmarshal(whole, req)
	}
	if err := proto.Unmarshal(rest, req); err != nil {
		return err
	}
	if block != nil {
		names, err := cache.InternNamesWire(block, decodeNames)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		setNames(names.List())
	}
	return nil
}

// decodeNames splits a block of resource_names entries into its names.
func decodeNames(block []byte) ([]string, error) {
	var names []string
	for len(block) > 0 {
		_, _, n := protowire.ConsumeTag(block)
		name, m := protowire.ConsumeBytes(block[n:])
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("resource name %q is not valid UTF-8", name)
		}
		names = append(names, string(name))
		block = block[n+m:]
	}
	return names, nil
}

// materialize returns data as one slice, and a function to call when done
// with it. A message in several buffers is copied into a buffer kept for
// the next one: the pool gRPC would use is emptied by every garbage
// collection, and EDS requests are large.
func materialize(data mem.BufferSlice) ([]byte, func()) {
	if len(data) == 1 {
		return data[0].ReadOnlyData(), func() {}
	}
	var buf []byte
	select {
	case buf = <-spareBuffers:
	default:
	}
	if n := data.Len(); cap(buf) < n {
		buf = make([]byte, n, max(n, 64<<10))
	} else {
		buf = buf[:n]
	}
	data.CopyTo(buf)
	return buf, func() {
		if cap(buf) > 1<<20 {
			return // a rare large request: let it go
		}
		select {
		case spareBuffers <- buf:
		default:
		}
	}
}

// spareBuffers are buffers for materialize, enough for the requests being
// decoded at once.
var spareBuffers = make(chan []byte, 8)
