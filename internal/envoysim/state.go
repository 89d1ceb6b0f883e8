package envoysim

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resource returns one received resource, or nil.
func (e *Envoy) Resource(typeURL, name string) proto.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.resources[typeURL][name]
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
// clusters and listeners received, the endpoints of every EDS cluster and
// every route configuration a listener names, and every cluster a route
// sends to. It returns what is missing otherwise.
func (e *Envoy) Complete() (bool, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var missing []string
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if e.resources[t] == nil {
			missing = append(missing, "no "+t+" received")
		}
	}
	for _, m := range e.resources[resourcev3.ClusterType] {
		c := m.(*clusterv3.Cluster)
		if c.GetType() == clusterv3.Cluster_EDS && e.resources[resourcev3.EndpointType][edsName(c)] == nil {
			missing = append(missing, "endpoints of "+c.GetName())
		}
	}
	for _, m := range e.resources[resourcev3.ListenerType] {
		l := m.(*listenerv3.Listener)
		for _, rc := range rdsNames(l) {
			if e.resources[resourcev3.RouteType][rc] == nil {
				missing = append(missing, "route configuration "+rc+" of listener "+l.GetName())
			}
		}
	}
	for _, m := range e.resources[resourcev3.RouteType] {
		for _, cl := range routeClusters(m.(*routev3.RouteConfiguration)) {
			if e.resources[resourcev3.ClusterType][cl] == nil {
				missing = append(missing, fmt.Sprintf("cluster %s of route configuration %s", cl, nameOf(m)))
			}
		}
	}
	sort.Strings(missing)
	return len(missing) == 0, missing
}

func edsName(c *clusterv3.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// rdsNames lists the route configurations a listener fetches over RDS.
func rdsNames(l *listenerv3.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(hcm) == nil && hcm.GetRds() != nil {
				out = append(out, hcm.GetRds().GetRouteConfigName())
			}
		}
	}
	return out
}

// routeClusters lists the clusters a route configuration sends to.
func routeClusters(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
				out = append(out, w.GetName())
			}
		}
	}
	return out
}

func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case *clusterv3.Cluster:
		return r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case *listenerv3.Listener:
		return r.GetName()
	case *routev3.RouteConfiguration:
		return r.GetName()
	}
	return fmt.Sprintf("%T", m)
}

func sortedNames(m map[string]proto.Message) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// minus returns the names in a that are not in b.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, n := range b {
		in[n] = true
	}
	var out []string
	for _, n := range a {
		if !in[n] {
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
