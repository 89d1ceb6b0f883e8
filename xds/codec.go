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
	"slices"
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
// field 2) as its header and its value, uncopied. The headers of all the
// resources are appended to one buffer (a few dozen bytes each, thousands
// of resources in a delta response that changes a whole mesh). m is the
// sender's, used by one goroutine: its list is set aside while its own
// fields are encoded. A resource that appendHead cannot split (it has
// unknown fields) sends the whole response through gRPC's codec.
func listedUncopied[R proto.Message](c sharedBytesCodec, m proto.Message, list *[]R, appendHead func(b []byte, r R) (head, value []byte, ok bool)) (mem.BufferSlice, error) {
	listed := *list
	var heads []byte
	ends := make([]int, len(listed))
	values := make([][]byte, len(listed))
	for i, r := range listed {
		var ok bool
		if heads, values[i], ok = appendHead(heads, r); !ok {
			return c.CodecV2.Marshal(m)
		}
		ends[i] = len(heads)
		if i == 0 {
			// Room for the others, taking the first as typical (the
			// names of one response's resources differ little in
			// length), but not an unusually large first for all.
			heads = slices.Grow(heads, min(len(heads)+len(heads)/4, 512)*(len(listed)-1))
		}
	}
	*list = nil
	out, err := c.withShared(m)
	*list = listed
	if err != nil {
		return nil, err
	}
	// A SliceBuffer's Free does nothing: gRPC leaves the values alone. The
	// buffers are pointers into one array, so that listing thousands of
	// them is not thousands of allocations.
	bufs := make([]mem.SliceBuffer, 0, 2*len(listed))
	out = slices.Grow(out, 2*len(listed))
	start := 0
	for i, end := range ends {
		bufs = append(bufs, heads[start:end:end])
		out = append(out, &bufs[len(bufs)-1])
		if len(values[i]) > 0 {
			bufs = append(bufs, values[i])
			out = append(out, &bufs[len(bufs)-1])
		}
		start = end
	}
	return out, nil
}

// anyHeader appends a, listed in a DiscoveryResponse, up to its value to b,
// and returns the value.
func anyHeader(b []byte, a *anypb.Any) (head, value []byte, ok bool) {
	if len(a.ProtoReflect().GetUnknown()) > 0 {
		return b, nil, false
	}
	return appendAnyHead(b, sotwResourcesField, a), a.GetValue(), true
}

// appendAnyHead appends field num holding a, up to a's value: the
// field's tag and length, a's type URL, and its value's tag and length.
func appendAnyHead(b []byte, num protowire.Number, a *anypb.Any) []byte {
	typeURL, value := a.GetTypeUrl(), a.GetValue()
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyHeadSize(a)+len(value)))
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

// anyHeadSize is the size of a's encoding without its value's bytes.
func anyHeadSize(a *anypb.Any) int {
	size := 0
	if typeURL := a.GetTypeUrl(); typeURL != "" {
		size += protowire.SizeTag(anyTypeURLField) + protowire.SizeBytes(len(typeURL))
	}
	if n := len(a.GetValue()); n > 0 {
		size += protowire.SizeTag(anyValueField) + protowire.SizeVarint(uint64(n))
	}
	return size
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
)

// The fields of a delta Resource. deltaResourceHeader writes them in this
// order, the Any last; a decoder takes fields in any order.
// TestDeltaResourceFieldsAreKnown fails if go-control-plane's Resource
// gains a field that is not here.
var (
	resourceFields       = (&discoveryv3.Resource{}).ProtoReflect().Descriptor().Fields()
	resourceVersionField = resourceFields.ByName("version").Number()
	resourceAnyField     = resourceFields.ByName("resource").Number() // the Any a delta resource wraps
	resourceNameField    = resourceFields.ByName("name").Number()
	resourceAliasesField = resourceFields.ByName("aliases").Number()
	// The others are messages, which minimesh does not set;
	// deltaResourceHeader encodes them with proto.Marshal.
	resourceMessageFields = []protoreflect.FieldDescriptor{resourceFields.ByName("resource_name"),
		resourceFields.ByName("ttl"), resourceFields.ByName("cache_control"), resourceFields.ByName("metadata")}
)

// deltaResourceHeader appends r, listed in a DeltaDiscoveryResponse, up to
// its Any's value to b: the field's tag and length, r's other fields (name,
// version, and aliases, resource name, TTL, cache control, metadata and
// unknown fields if it has them), then the Any up to its value; and returns the value. r is
// shared: it is only read. This runs for every resource of every delta
// response (a PeerAuthentication edit of the large mesh sends 3000
// resources to each of 2000 proxies), so the common fields are written
// directly, not through protobuf's reflection.
func deltaResourceHeader(b []byte, r *discoveryv3.Resource) (head, value []byte, ok bool) {
	a := r.GetResource()
	if a == nil || len(a.ProtoReflect().GetUnknown()) > 0 {
		return b, nil, false
	}
	var messages []byte // resource_name, ttl, cache_control, metadata: not set by minimesh
	if r.GetResourceName() != nil || r.GetTtl() != nil || r.GetCacheControl() != nil || r.GetMetadata() != nil {
		rest := r.ProtoReflect().New()
		for _, fd := range resourceMessageFields {
			if r.ProtoReflect().Has(fd) {
				rest.Set(fd, r.ProtoReflect().Get(fd))
			}
		}
		var err error
		if messages, err = (proto.MarshalOptions{Deterministic: true}).Marshal(rest.Interface()); err != nil {
			return b, nil, false
		}
	}
	version, name, aliases, unknown := r.GetVersion(), r.GetName(), r.GetAliases(), r.ProtoReflect().GetUnknown()
	// proto.Marshal refuses a string that is not UTF-8, and so must this,
	// or a receiver would refuse the whole response. The fallback
	// returns proto.Marshal's error.
	if !utf8.ValidString(version) || !utf8.ValidString(name) || slices.ContainsFunc(aliases, notUTF8) {
		return b, nil, false
	}
	anySize := anyHeadSize(a) + len(a.GetValue())
	size := protowire.SizeTag(resourceAnyField) + protowire.SizeBytes(anySize) + len(messages) + len(unknown)
	if version != "" {
		size += protowire.SizeTag(resourceVersionField) + protowire.SizeBytes(len(version))
	}
	if name != "" {
		size += protowire.SizeTag(resourceNameField) + protowire.SizeBytes(len(name))
	}
	for _, alias := range aliases {
		size += protowire.SizeTag(resourceAliasesField) + protowire.SizeBytes(len(alias))
	}
	b = protowire.AppendTag(b, deltaResourcesField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if version != "" {
		b = protowire.AppendTag(b, resourceVersionField, protowire.BytesType)
		b = protowire.AppendString(b, version)
	}
	if name != "" {
		b = protowire.AppendTag(b, resourceNameField, protowire.BytesType)
		b = protowire.AppendString(b, name)
	}
	for _, alias := range aliases {
		b = protowire.AppendTag(b, resourceAliasesField, protowire.BytesType)
		b = protowire.AppendString(b, alias)
	}
	b = append(b, messages...)
	b = append(b, unknown...)
	return appendAnyHead(b, resourceAnyField, a), a.GetValue(), true
}

func notUTF8(s string) bool { return !utf8.ValidString(s) }

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
