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
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

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
		return listedUncopied(c, m, &m.Resources, anyHeader)
	case *discoveryv3.DeltaDiscoveryResponse:
		if len(m.GetResources()) == 0 {
			return c.withShared(m)
		}
		return listedUncopied(c, m, &m.Resources, deltaResourceHeader)
	}
	return c.CodecV2.Marshal(v)
}

// A response that lists only some resources of a set (the route
// configuration a VirtualService edit changed, the endpoints of one
// service; with delta, nearly every response) lists them as messages,
// which gRPC's codec would copy, value bytes and all, into a new buffer
// that it clears first, for every stream: a 453 KiB route configuration
// sent to 2000 proxies was 900 MB cleared and 900 MB copied, 12.7% of the
// server's CPU during the change. The value of each listed resource is
// already the memo's encoding of it, shared and read only (cache/wire.go).
// So a listed resource is sent as a few header bytes (the field's tag and
// length, the type URL; for delta also the name and version), then its
// value, uncopied, after the response's own fields: protobuf lets a
// message's fields come in any order.

// listedUncopied encodes m's own fields, then each resource of *list (m's
// field 2) as its header and its value, uncopied. m is the sender's, used
// by one goroutine: its list is set aside while its own fields are
// encoded. A resource that header cannot split (it has unknown fields)
// sends the whole response through gRPC's codec.
func listedUncopied[R proto.Message](c sharedBytesCodec, m proto.Message, list *[]R, header func(R) (head, value []byte, ok bool)) (mem.BufferSlice, error) {
	listed := *list
	parts := make([][]byte, 0, 2*len(listed))
	for _, r := range listed {
		head, value, ok := header(r)
		if !ok {
			return c.CodecV2.Marshal(m)
		}
		parts = append(parts, head, value)
	}
	*list = nil
	out, err := c.withShared(m)
	*list = listed
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if len(p) > 0 {
			// A SliceBuffer's Free does nothing: gRPC leaves value alone.
			out = append(out, mem.SliceBuffer(p))
		}
	}
	return out, nil
}

// anyHeader splits a, listed in a DiscoveryResponse, into what goes before
// its value and the value.
func anyHeader(a *anypb.Any) (head, value []byte, ok bool) {
	if len(a.ProtoReflect().GetUnknown()) > 0 {
		return nil, nil, false
	}
	return appendAnyHead(nil, sotwResourcesField, a), a.GetValue(), true
}

// appendAnyHead appends field num holding a, up to a's value: the
// field's tag and length, a's type URL, and its value's tag and length.
func appendAnyHead(b []byte, num protowire.Number, a *anypb.Any) []byte {
	typeURL, value := a.GetTypeUrl(), a.GetValue()
	size := 0
	if typeURL != "" {
		size += protowire.SizeTag(anyTypeURLField) + protowire.SizeBytes(len(typeURL))
	}
	if len(value) > 0 {
		size += protowire.SizeTag(anyValueField) + protowire.SizeBytes(len(value))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if typeURL != "" {
		b = protowire.AppendTag(b, anyTypeURLField, protowire.BytesType)
		b = protowire.AppendString(b, typeURL)
	}
	if len(value) > 0 {
		b = protowire.AppendTag(b, anyValueField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(value)))
	}
	return b
}

// The fields of google.protobuf.Any.
const (
	anyTypeURLField protowire.Number = 1
	anyValueField   protowire.Number = 2
)

var (
	// The resources of each kind of response.
	sotwResourcesField  = (&discoveryv3.DiscoveryResponse{}).ProtoReflect().Descriptor().Fields().ByName("resources").Number()
	deltaResourcesField = (&discoveryv3.DeltaDiscoveryResponse{}).ProtoReflect().Descriptor().Fields().ByName("resources").Number()
	// resourceAnyField is Resource.resource, the Any a delta resource wraps.
	resourceAnyField = (&discoveryv3.Resource{}).ProtoReflect().Descriptor().Fields().ByName("resource")
)

// deltaResourceHeader splits r, listed in a DeltaDiscoveryResponse, into
// what goes before its Any's value and the value: r's other fields (name,
// version and whatever else it has), then the Any up to its value.
func deltaResourceHeader(r *discoveryv3.Resource) (head, value []byte, ok bool) {
	a := r.GetResource()
	if a == nil || len(a.ProtoReflect().GetUnknown()) > 0 {
		return nil, nil, false
	}
	// The other fields, from a shallow copy without the Any (r is shared:
	// it is only read).
	rest := r.ProtoReflect().New()
	r.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != resourceAnyField {
			rest.Set(fd, v)
		}
		return true
	})
	rest.SetUnknown(r.ProtoReflect().GetUnknown())
	fields, err := proto.MarshalOptions{Deterministic: true}.Marshal(rest.Interface())
	if err != nil {
		return nil, nil, false
	}
	anyHead := appendAnyHead(nil, resourceAnyField.Number(), a)
	head = protowire.AppendTag(nil, deltaResourcesField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(fields)+len(anyHead)+len(a.GetValue())))
	head = append(head, fields...)
	head = append(head, anyHead...)
	return head, a.GetValue(), true
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
