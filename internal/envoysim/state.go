package envoysim

import (
	"fmt"
	"sort"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resource returns one received resource, or nil. It must not be modified
// (with a shared Decoder, other Envoys hold the same message).
func (e *Envoy) Resource(typeURL, name string) proto.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.resources[typeURL][name]; r != nil {
		return r.msg
	}
	return nil
}

// Names lists the received resources of one type.
func (e *Envoy) Names(typeURL string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.resources[typeURL]))
	for n := range e.resources[typeURL] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Complete reports whether the Envoy holds a complete, consistent config:
// clusters and listeners received, the endpoints of every EDS cluster,
// every route configuration a listener names, every cluster a route sends
// to, and every SDS secret a cluster or listener uses. It returns what is
// missing otherwise.
func (e *Envoy) Complete() (bool, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	missing := e.missing(-1)
	sort.Strings(missing)
	return len(missing) == 0, missing
}

// IsComplete is Complete without the list: it stops at the first missing
// name, and is cheap enough to call after every response.
func (e *Envoy) IsComplete() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.missing(1)) == 0
}

// missing lists up to limit (all if negative) missing names. Must hold
// e.mu.
func (e *Envoy) missing(limit int) []string {
	var missing []string
	add := func(format string, args ...any) bool {
		missing = append(missing, fmt.Sprintf(format, args...))
		return limit >= 0 && len(missing) >= limit
	}
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if e.resources[t] == nil && add("no %s received", t) {
			return missing
		}
	}
	clusters := e.resources[resourcev3.ClusterType]
	secrets := e.resources[resourcev3.SecretType]
	endpoints := e.resources[resourcev3.EndpointType]
	routes := e.resources[resourcev3.RouteType]
	// The few listeners first: until the route configurations come, that
	// answers without going through thousands of clusters.
	for _, l := range e.resources[resourcev3.ListenerType] {
		for _, rc := range l.rds {
			if routes[rc] == nil && add("route configuration %s of listener %s", rc, l.name) {
				return missing
			}
		}
		for _, cl := range l.clusters {
			if clusters[cl] == nil && add("cluster %s of listener %s", cl, l.name) {
				return missing
			}
		}
		for _, s := range l.sds {
			if secrets[s] == nil && add("secret %s of listener %s", s, l.name) {
				return missing
			}
		}
	}
	for _, c := range clusters {
		if c.eds != "" && endpoints[c.eds] == nil && add("endpoints of %s", c.name) {
			return missing
		}
		for _, s := range c.sds {
			if secrets[s] == nil && add("secret %s of cluster %s", s, c.name) {
				return missing
			}
		}
	}
	for _, rc := range routes {
		for _, cl := range rc.clusters {
			if clusters[cl] == nil && add("cluster %s of route configuration %s", cl, rc.name) {
				return missing
			}
		}
	}
	return missing
}

// minus returns the names in a that are not in b.
// Both are sorted (subscriptions are kept sorted, followReferences).
func minus(a, b []string) []string {
	var out []string
	for _, n := range a {
		for len(b) > 0 && b[0] < n {
			b = b[1:]
		}
		if len(b) == 0 || b[0] != n {
			out = append(out, n)
		}
	}
	return out
}

func structOf(m map[string]string) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range m {
		s.Fields[k] = structpb.NewStringValue(v)
	}
	return s
}
