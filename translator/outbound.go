package translator

// The outbound side of an Envoy sidecar in explicit mode: the application
// sends HTTP to 127.0.0.1:15001 (HTTP_PROXY), and Envoy picks the virtual
// host by the request's Host/:authority.

import (
	"fmt"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/minimesh/minimesh/mesh"
)

// outboundHTTPProxyListener listens on 127.0.0.1:15001 and routes with the
// route configuration "15001".
func outboundHTTPProxyListener() (*listenerv3.Listener, error) {
	hcm, err := HTTPConnectionManager(statPrefixOutbound, RouteConfigName(OutboundHTTPProxyPort), nil)
	if err != nil {
		return nil, err
	}
	f, err := hcmFilter(hcm)
	if err != nil {
		return nil, err
	}
	return Listener(ListenerName("127.0.0.1", OutboundHTTPProxyPort), "127.0.0.1", OutboundHTTPProxyPort, f), nil
}

// httpProxyRouteConfig has one virtual host per HTTP service port. Its
// domains are every name the proxy may use for the service, with the port
// ("my-app:8080"); for port 80 also without, because an HTTP client leaves
// the default port out of the Host header.
func (ix *index) httpProxyRouteConfig(p Proxy, v *view, used map[clusterRef]bool) (*routev3.RouteConfiguration, error) {
	rc := RouteConfiguration(RouteConfigName(OutboundHTTPProxyPort))
	taken := map[string]bool{}
	var errs []error
	for _, svc := range v.imported {
		for _, port := range svc.Ports {
			if !port.Protocol.IsHTTP() {
				continue // raw TCP cannot be routed by Host
			}
			domains := ix.domains(svc, port.Number, p.Namespace, port.Number == 80, taken)
			if len(domains) == 0 {
				continue
			}
			routes, err := ix.routesFor(svc, port.Number, FlavorEnvoy, used)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rc.VirtualHosts = append(rc.VirtualHosts, VirtualHost(VirtualHostName(svc.Hostname, port.Number), domains, routes...))
		}
	}
	if len(errs) > 0 {
		return rc, fmt.Errorf("route configuration %s: %v", rc.Name, errs)
	}
	return rc, nil
}

// domains lists the Host values that select a service port, skipping any
// already taken by another virtual host (a literal host wins over an alias).
func (ix *index) domains(svc *mesh.Service, port uint32, ns string, bare bool, taken map[string]bool) []string {
	var out []string
	add := func(d string) {
		if !taken[d] {
			taken[d] = true
			out = append(out, d)
		}
	}
	for _, a := range ix.aliases(svc, ns) {
		if bare {
			add(a)
		}
		add(a + ":" + strconv.FormatUint(uint64(port), 10))
	}
	return out
}
