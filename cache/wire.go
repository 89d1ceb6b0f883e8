package cache

// Sending a resource costs a marshal, and go-control-plane marshals every
// resource of every response again (RawResponse.GetDiscoveryResponse), for
// every proxy, although nearly all proxies get the same resources: at 1000
// services, 1.4 MiB of identical clusters and endpoints per proxy.
//
// So each resource is marshalled once, when it is hashed for its version,
// and go-control-plane is handed a shell instead: a message of the same Go
// type whose only content is those bytes, kept as unknown fields. Marshalling
// a shell just copies the bytes, and they are exactly the deterministic
// encoding of the resource, so what goes on the wire does not change.
//
// Shells are for sending only: they have no name and no fields. The cache's
// own Snapshot (what Get returns, what the debug endpoints and tests read)
// keeps the real messages; go-control-plane gets the wire view below.

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// preMarshalled returns a message of r's type whose content is only b,
// r's wire bytes, as unknown fields.
func preMarshalled(r types.Resource, b []byte) types.Resource {
	m := r.ProtoReflect().New()
	m.SetUnknown(protoreflect.RawFields(b))
	return m.Interface()
}

// wireView is what go-control-plane sees of a snapshot: the same versions,
// with each resource replaced by its pre-marshalled shell.
type wireView struct{ s *Snapshot }

var _ cachev3.ResourceSnapshot = wireView{}

func (w wireView) GetVersion(typeURL string) string { return w.s.GetVersion(typeURL) }

func (w wireView) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if set := w.s.sets[typeURL]; set != nil {
		return set.wireTTL
	}
	return nil
}

func (w wireView) GetResources(typeURL string) map[string]types.Resource {
	if set := w.s.sets[typeURL]; set != nil {
		return set.wire
	}
	return nil
}

func (w wireView) ConstructVersionMap() error { return nil }

func (w wireView) GetVersionMap(typeURL string) map[string]string {
	return w.s.GetVersionMap(typeURL)
}
