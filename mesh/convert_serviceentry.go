package mesh

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// convertServiceEntry turns a ServiceEntry into one Service per host, in the
// order of spec.hosts, or returns nil after reporting why it cannot.
// workloads are the valid workloads, for spec.workloadSelector.
func convertServiceEntry(ref Ref, se *networking.ServiceEntry, workloads *workloadIndex, domainSuffix string, r *report) []*Service {
	hosts := serviceEntryHosts(se.GetHosts(), ref.Namespace, domainSuffix, r)
	ports := convertServicePorts(se.GetPorts(), r)
	resolution := convertResolution(se, r)
	if se.GetWorkloadSelector() != nil && len(se.GetEndpoints()) > 0 {
		r.errorf("spec.workloadSelector", "set either endpoints or workloadSelector, not both")
	}
	endpoints := inlineEndpoints(se.GetEndpoints(), ports, resolution, r)
	addresses := serviceAddresses(se.GetAddresses(), r)
	if !r.ok() {
		return nil
	}
	if sel := se.GetWorkloadSelector(); sel != nil {
		endpoints = selectedEndpoints(workloads.selected(ref.Namespace, sel.GetLabels()), resolution, r)
	}
	services := make([]*Service, 0, len(hosts))
	for _, host := range hosts {
		services = append(services, &Service{
			Hostname:   host,
			Namespace:  ref.Namespace,
			Ports:      slices.Clone(ports),
			Resolution: resolution,
			// The zero value of location is MESH_EXTERNAL: a ServiceEntry that
			// does not say otherwise describes something outside the mesh,
			// exactly as in Istio.
			External:  se.GetLocation() == networking.ServiceEntry_MESH_EXTERNAL,
			Endpoints: sortEndpoints(dnsEndpoints(host, endpoints, resolution, se), ports),
			Addresses: slices.Clone(addresses),
			Source:    ref,
		})
	}
	return services
}

// serviceEntryHosts checks spec.hosts and returns them without duplicates.
// ServiceEntry hosts are taken literally, as Istio does.
func serviceEntryHosts(hosts []string, namespace, domainSuffix string, r *report) []string {
	if len(hosts) == 0 {
		r.errorf("spec.hosts", "missing: a ServiceEntry needs at least one host")
	}
	var out []string
	for i, host := range hosts {
		path := fieldPath("spec.hosts").index(i)
		switch {
		case host == "":
			r.errorf(path, "empty host")
		case isWildcard(host):
			r.errorf(path, "wildcard host %q is not supported by minimesh: it needs the "+
				"name of each service", host)
		case !isValidHost(host):
			r.errorf(path, "%q is not a valid DNS name", host)
		case slices.Contains(out, host):
			r.warnf(path, "host %q is listed twice", host)
		default:
			if isShortName(host) {
				r.warnf(path, "%q is a short name; ServiceEntry hosts are taken literally, but "+
					"VirtualServices and DestinationRules expand %q to %q: write that here",
					host, host, ResolveHost(host, namespace, domainSuffix))
			}
			out = append(out, host)
		}
	}
	return out
}

// serviceAddresses checks spec.addresses, the virtual IPs of the service:
// each an IP address or a CIDR range ("10.96.0.10", "240.0.0.0/16"). A range
// written with host bits set ("10.0.0.1/8") means the whole range, as in
// Istio; it is kept in its canonical form ("10.0.0.0/8"), with a warning.
// Duplicates are dropped with a warning.
func serviceAddresses(addresses []string, r *report) []string {
	var out []string
	for i, addr := range addresses {
		path := fieldPath("spec.addresses").index(i)
		if !isIP(addr) {
			prefix, err := netip.ParsePrefix(addr)
			if err != nil {
				r.errorf(path, "%q is neither an IP address nor a CIDR range (such as 10.0.0.0/16)", addr)
				continue
			}
			if canonical := prefix.Masked().String(); canonical != addr {
				r.warnf(path, "%q has host bits set: it means the range %s", addr, canonical)
				addr = canonical
			}
		}
		if slices.Contains(out, addr) {
			r.warnf(path, "address %q is listed twice", addr)
			continue
		}
		out = append(out, addr)
	}
	return out
}

// convertServicePorts checks spec.ports and returns them sorted by number.
func convertServicePorts(ports []*networking.ServicePort, r *report) []Port {
	if len(ports) == 0 {
		r.errorf("spec.ports", "missing: a ServiceEntry needs at least one port")
	}
	numbers := map[uint32]int{} // port number -> index where first seen
	names := map[string]int{}   // port name -> index where first seen
	out := make([]Port, 0, len(ports))
	for i, p := range ports {
		path := fieldPath("spec.ports").index(i)
		checkPortNumber(p.GetNumber(), path.field("number"), r)
		if j, dup := numbers[p.GetNumber()]; dup {
			r.errorf(path.field("number"), "port %d is also spec.ports[%d]; port numbers must be unique", p.GetNumber(), j)
		} else {
			numbers[p.GetNumber()] = i
		}
		switch j, dup := names[p.GetName()]; {
		case p.GetName() == "":
			r.errorf(path.field("name"), "missing: every port needs a name (endpoints and workloads refer to ports by name)")
		case dup:
			r.errorf(path.field("name"), "name %q is also spec.ports[%d]; port names must be unique", p.GetName(), j)
		default:
			names[p.GetName()] = i
		}
		if p.GetTargetPort() > 65535 {
			r.errorf(path.field("targetPort"), "port %d out of range, want 1-65535", p.GetTargetPort())
		}
		out = append(out, Port{
			Number:     p.GetNumber(),
			Name:       p.GetName(),
			Protocol:   convertProtocol(p.GetProtocol(), p.GetName(), path.field("protocol"), r),
			TargetPort: p.GetTargetPort(),
		})
	}
	slices.SortFunc(out, func(a, b Port) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

// opaqueProtocols are Istio protocols that minimesh carries as plain TCP.
var opaqueProtocols = []string{"HTTPS", "TLS", "GRPC-WEB", "MONGO", "MYSQL", "REDIS"}

// routedProtocols are the protocols minimesh distinguishes.
var routedProtocols = []string{"HTTP", "HTTP2", "GRPC", "TCP"}

// convertProtocol maps an Istio protocol name (any case) to a Protocol.
func convertProtocol(protocol, portName string, path fieldPath, r *report) Protocol {
	upper := strings.ToUpper(protocol)
	switch {
	case slices.Contains(routedProtocols, upper):
		return Protocol(upper)
	case slices.Contains(opaqueProtocols, upper):
		r.warnf(path, "protocol %s is carried as opaque TCP by minimesh", protocol)
		return ProtocolTCP
	case upper == "":
		return protocolFromName(portName, path, r)
	case upper == "UDP":
		r.errorf(path, "UDP is not supported by minimesh (sidecars proxy TCP only)")
	default:
		all := slices.Concat(routedProtocols, opaqueProtocols)
		r.errorf(path, "unknown protocol %q, want one of %s%s",
			protocol, strings.Join(all, ", "), didYouMean(upper, all))
	}
	return ProtocolTCP
}

// protocolFromName picks the protocol of a port that has none from its
// name, following Istio's naming convention ("http", "grpc-api", ...).
// Istio would sniff the protocol of such a port at run time, which minimesh
// cannot do, so a port whose name says nothing is TCP, with a warning.
func protocolFromName(portName string, path fieldPath, r *report) Protocol {
	prefix, _, _ := strings.Cut(strings.ToUpper(portName), "-")
	if slices.Contains(routedProtocols, prefix) {
		return Protocol(prefix)
	}
	r.warnf(path, "not set, and the port name %q does not say: treated as TCP "+
		"(set protocol: HTTP to route HTTP requests)", portName)
	return ProtocolTCP
}

// convertResolution maps spec.resolution to a Resolution.
//
// Istio's default, NONE, forwards traffic to whatever address the
// application connected to. minimesh cannot do that (in explicit capture
// mode there is no original destination), and proto3 cannot tell an unset
// field from NONE anyway, so both mean STATIC: traffic goes to the listed
// endpoints or the selected workloads.
func convertResolution(se *networking.ServiceEntry, r *report) Resolution {
	switch res := se.GetResolution(); res {
	case networking.ServiceEntry_NONE:
		if len(se.GetEndpoints()) == 0 && se.GetWorkloadSelector() == nil {
			r.warnf("spec.resolution", "NONE (or not set) and no endpoints: minimesh does not "+
				"forward to the original destination, so this service has no endpoints")
		}
		return ResolutionStatic
	case networking.ServiceEntry_STATIC:
		return ResolutionStatic
	case networking.ServiceEntry_DNS:
		return ResolutionDNS
	case networking.ServiceEntry_DNS_ROUND_ROBIN:
		r.warnf("spec.resolution", "DNS_ROUND_ROBIN is treated as DNS by minimesh")
		return ResolutionDNS
	default:
		r.errorf("spec.resolution", "%s is not supported by minimesh, want STATIC or DNS", res)
		return ResolutionStatic
	}
}

// inlineEndpoints converts spec.endpoints.
func inlineEndpoints(eps []*networking.WorkloadEntry, ports []Port, res Resolution, r *report) []*Endpoint {
	out := make([]*Endpoint, 0, len(eps))
	for i, ep := range eps {
		path := fieldPath("spec.endpoints").index(i)
		checkAddress(ep.GetAddress(), res == ResolutionDNS, path.field("address"), r)
		checkEndpointPorts(ep.GetPorts(), ports, path.field("ports"), r)
		out = append(out, &Endpoint{
			Address:        ep.GetAddress(),
			Ports:          maps.Clone(ep.GetPorts()),
			Labels:         maps.Clone(ep.GetLabels()),
			Weight:         ep.GetWeight(),
			ServiceAccount: ep.GetServiceAccount(),
		})
	}
	return out
}

// checkEndpointPorts checks that an endpoint's port map names ports of the
// service and maps them to valid numbers.
func checkEndpointPorts(epPorts map[string]uint32, ports []Port, path fieldPath, r *report) {
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	for _, name := range slices.Sorted(maps.Keys(epPorts)) {
		if !slices.Contains(names, name) {
			r.errorf(path.key(name), "no service port named %q (ports: %s)%s",
				name, listNames(names), didYouMean(name, names))
		}
		checkPortNumber(epPorts[name], path.key(name), r)
	}
}

// selectedEndpoints returns an endpoint for each workload a selector
// picked. A selected workload that cannot serve (a DNS name where IPs are
// needed) is skipped with a warning: workloads come and go, and the service
// itself is fine.
func selectedEndpoints(workloads []*Workload, res Resolution, r *report) []*Endpoint {
	var out []*Endpoint
	for _, w := range workloads {
		if res == ResolutionStatic && !isIP(w.Address) {
			r.warnf("spec.workloadSelector", "selects WorkloadEntry %s/%s, whose address %q is not an IP; "+
				"resolution STATIC needs IP addresses: workload skipped", w.Namespace, w.Name, w.Address)
			continue
		}
		out = append(out, &Endpoint{
			Address:        w.Address,
			Ports:          maps.Clone(w.Ports),
			Labels:         maps.Clone(w.Labels),
			Workload:       w,
			ServiceAccount: w.ServiceAccount,
		})
	}
	return out
}

// dnsEndpoints returns the endpoints of one host. A DNS service that lists
// no endpoints and selects no workloads resolves its own host name, as in
// Istio.
func dnsEndpoints(host string, eps []*Endpoint, res Resolution, se *networking.ServiceEntry) []*Endpoint {
	if res == ResolutionDNS && len(eps) == 0 && se.GetWorkloadSelector() == nil {
		return []*Endpoint{{Address: host}}
	}
	return slices.Clone(eps)
}

// sortEndpoints sorts endpoints by address, then by the port they use for
// each service port, then by workload, and returns them.
func sortEndpoints(eps []*Endpoint, ports []Port) []*Endpoint {
	slices.SortStableFunc(eps, func(a, b *Endpoint) int {
		if c := cmp.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		for _, p := range ports {
			if c := cmp.Compare(a.PortFor(p), b.PortFor(p)); c != 0 {
				return c
			}
		}
		return cmp.Compare(workloadID(a.Workload), workloadID(b.Workload))
	})
	return eps
}

// workloadID is the ID of w, or "" for no workload.
func workloadID(w *Workload) string {
	if w == nil {
		return ""
	}
	return w.ID()
}
