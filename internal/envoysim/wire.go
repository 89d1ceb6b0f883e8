package envoysim

// A simulated Envoy beside the control plane it measures shares the
// machine's cores with it, so it reads state-of-the-world responses
// cheaply: straight off the received bytes, each resource looked up by its
// bytes in the shared Decoder, and copied and decoded only when its
// content is new. Decoded as usual, a sidecar's first response at 1000
// services is 6000 new messages and 1.4 MiB copied, nearly all of it
// identical to what the previous simulated Envoy received. What is checked
// is the same either way: every resource is decoded and validated once per
// distinct content, and every response's resources are looked at.

import (
	"fmt"
	"sync"
	"unique"
	"unsafe"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// sotwRequest is a DiscoveryRequest whose resource names are already
// encoded. Envoy sends every endpoint set it uses with every EDS ACK (3000
// names at 1000 services); a simulated Envoy encodes its list once per
// change of its subscription rather than once per ACK.
type sotwRequest struct {
	req   *discoveryv3.DiscoveryRequest // without resource names
	names []byte                        // resource_names, encoded
}

// requestNames remembers the encoding of the names last sent, per type.
type requestNames map[string]encodedNames

type encodedNames struct {
	list []string
	enc  []byte
	// canonical keeps enc's one copy shared by every simulated Envoy that
	// subscribes to the same names (see encoded).
	canonical unique.Handle[string]
}

// encoded returns names encoded as DiscoveryRequest.resource_names,
// encoding them only if they are not the list encoded last for typeURL.
// Lists are never changed once subscribed (followReferences makes new
// ones), so the same slice means the same names.
func (r *requestNames) encoded(typeURL string, names []string) []byte {
	if len(names) == 0 {
		return nil
	}
	if *r == nil {
		*r = requestNames{}
	}
	if last := (*r)[typeURL]; len(last.list) == len(names) && &last.list[0] == &names[0] {
		return last.enc
	}
	var enc []byte
	for _, n := range names {
		enc = protowire.AppendTag(enc, 3, protowire.BytesType)
		enc = protowire.AppendString(enc, n)
	}
	// Simulated Envoys of one mesh mostly subscribe to the same names:
	// 2000 sidecars each kept their own copy of the same 3000 endpoint
	// set names, 340 MB in all, and the page faults of writing them were
	// a tenth of the load generator's CPU while connecting. They share
	// one now, for as long as any of them uses it. (gRPC only reads what
	// it is given to send, so the canonical string's bytes are safe to
	// hand out; unique.Make copies a string it keeps, so enc itself is
	// not kept.)
	h := unique.Make(unsafe.String(&enc[0], len(enc)))
	canon := h.Value()
	enc = unsafe.Slice(unsafe.StringData(canon), len(canon))
	(*r)[typeURL] = encodedNames{list: names, enc: enc, canonical: h}
	return enc
}

func (c responseCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*sotwRequest)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	out, err := c.CodecV2.Marshal(r.req)
	if err != nil || len(r.names) == 0 {
		return out, err
	}
	return append(out, mem.SliceBuffer(r.names)), nil
}

// sotwResponse is a DiscoveryResponse with its resources decoded.
type sotwResponse struct {
	version, typeURL, nonce string
	resources               []*resource
	size                    int // bytes on the wire
}

// responseCodec is gRPC's proto codec, except that it reads responses
// into sotwResponse.
type responseCodec struct {
	encoding.CodecV2
	decoder *Decoder
}

func newResponseCodec(d *Decoder) responseCodec {
	return responseCodec{encoding.GetCodecV2(grpcproto.Name), d}
}

func (c responseCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var err error
	switch r := v.(type) {
	case *sotwResponse:
		c.decoder.work(func() { err = c.read(data, r) })
	case *deltaResponse:
		c.decoder.work(func() { err = c.readDelta(data, r) })
	default:
		err = c.CodecV2.Unmarshal(data, v)
	}
	return err
}

// deltaResponse is a DeltaDiscoveryResponse with its resources decoded.
type deltaResponse struct {
	version, typeURL, nonce string
	resources               []*resource // in the response's order
	misnamed                string      // a resource listed under a name not its own, if any
	removed                 []string
	size                    int // bytes on the wire
}

// scratch holds what reading a response needs only until its resources
// are decoded: the encoded Anys (and, for delta, the names they are listed
// under), slices into the response's buffer. 2000 simulated Envoys
// connecting read thousands of resources each; allocated afresh, these
// lists were hundreds of megabytes of new memory, zeroed page by page by
// the kernel while the clock runs.
type scratch struct {
	anys  []encodedAny
	names [][]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release returns s to the pool, keeping nothing of the buffer it pointed into.
func (s *scratch) release() {
	clear(s.anys)
	clear(s.names)
	s.anys, s.names = s.anys[:0], s.names[:0]
	scratchPool.Put(s)
}

// readDelta reads a delta response into r.
func (c responseCodec) readDelta(data mem.BufferSlice, r *deltaResponse) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	r.size = len(b)
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	// DeltaDiscoveryResponse: system_version_info 1, resources 2
	// (Resource: version 1, resource 2, name 3), type_url 4, nonce 5,
	// removed_resources 6, removed_resource_names 8 (ResourceName: name 1).
	err := eachField(b, func(num protowire.Number, field []byte) error {
		switch num {
		case 1:
			r.version = string(field)
		case 2:
			anyBytes, name, err := readResource(field)
			if err != nil {
				return fmt.Errorf("resource %d: %w", len(sc.anys), err)
			}
			a, err := readAny(anyBytes)
			if err != nil {
				return fmt.Errorf("resource %d: %w", len(sc.anys), err)
			}
			sc.anys, sc.names = append(sc.anys, a), append(sc.names, name)
		case 4:
			r.typeURL = string(field)
		case 5:
			r.nonce = string(field)
		case 6:
			r.removed = append(r.removed, string(field))
		case 8:
			return eachField(field, func(num protowire.Number, f []byte) error {
				if num == 1 {
					r.removed = append(r.removed, string(f))
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.resources = c.decoder.decodeAll(sc.anys)
	// Envoy keeps a delta resource under the name it is listed with,
	// which must be the resource's own. (One that does not decode is
	// reported for that already.)
	for i, d := range r.resources {
		if d.err == "" && string(sc.names[i]) != d.name {
			r.misnamed = fmt.Sprintf("a delta resource listed as %q is %s %q", sc.names[i], r.typeURL, d.name)
			break
		}
	}
	return nil
}

// read reads a response into r.
func (c responseCodec) read(data mem.BufferSlice, r *sotwResponse) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	r.size = len(b)
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	// DiscoveryResponse: version_info 1, resources 2, type_url 4, nonce 5.
	err := eachField(b, func(num protowire.Number, field []byte) error {
		switch num {
		case 1:
			r.version = string(field)
		case 2:
			a, err := readAny(field)
			if err != nil {
				return fmt.Errorf("resource %d: %w", len(sc.anys), err)
			}
			sc.anys = append(sc.anys, a)
		case 4:
			r.typeURL = string(field)
		case 5:
			r.nonce = string(field)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.resources = c.decoder.decodeAll(sc.anys)
	return nil
}

// readResource reads a delta Resource's resource (2, an encoded Any) and
// name (3); its version (1) is the server's to choose, and a simulated
// Envoy does not compare it. It and readAny are plain loops over
// nextField, not eachField: they run for every resource of every response,
// and a closure would cost an allocation each time.
func readResource(b []byte) (anyBytes, name []byte, err error) {
	for len(b) > 0 {
		var num protowire.Number
		var f []byte
		if num, f, b, err = nextField(b); err != nil {
			return nil, nil, err
		}
		switch num {
		case 2:
			anyBytes = f
		case 3:
			name = f
		}
	}
	return anyBytes, name, nil
}

// readAny reads an encoded Any: type_url 1, value 2.
func readAny(b []byte) (a encodedAny, err error) {
	for len(b) > 0 {
		var num protowire.Number
		var f []byte
		if num, f, b, err = nextField(b); err != nil {
			return encodedAny{}, err
		}
		switch num {
		case 1:
			a.typeURL = f
		case 2:
			a.value = f
		}
	}
	return a, nil
}

// nextField reads the first field of the message b: its number and, for a
// length-delimited field, its contents (nil for other wire types), and
// returns the rest of b.
func nextField(b []byte) (num protowire.Number, field, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, nil, nil, protowire.ParseError(n)
	}
	b = b[n:]
	if typ != protowire.BytesType {
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, nil, nil, protowire.ParseError(m)
		}
		return num, nil, b[m:], nil
	}
	field, m := protowire.ConsumeBytes(b)
	if m < 0 {
		return 0, nil, nil, protowire.ParseError(m)
	}
	return num, field, b[m:], nil
}

// eachField calls visit with the contents of every length-delimited field
// of the message b, and skips the others.
func eachField(b []byte, visit func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, field, rest, err := nextField(b)
		if err != nil {
			return err
		}
		if field != nil {
			if err := visit(num, field); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}
