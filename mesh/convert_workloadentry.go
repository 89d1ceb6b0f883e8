package mesh

import (
	"maps"
	"slices"

	networking "istio.io/api/networking/v1alpha3"
)

// defaultServiceAccount is the identity of a workload that names none, as
// in Kubernetes.
const defaultServiceAccount = "default"

// convertWorkloadEntry turns a WorkloadEntry into a Workload, or returns nil
// after reporting why it cannot.
func convertWorkloadEntry(ref Ref, we *networking.WorkloadEntry, r *report) *Workload {
	checkAddress(we.GetAddress(), true, "spec.address", r)
	checkPortMap(we.GetPorts(), "spec.ports", r)
	if !r.ok() {
		return nil
	}
	sa := we.GetServiceAccount()
	if sa == "" {
		sa = defaultServiceAccount
	}
	return &Workload{
		Name:           ref.Name,
		Namespace:      ref.Namespace,
		Address:        we.GetAddress(),
		Labels:         maps.Clone(we.GetLabels()),
		ServiceAccount: sa,
		Ports:          maps.Clone(we.GetPorts()),
		Source:         ref,
	}
}

// checkAddress checks the address of a workload or an endpoint: required,
// and an IP address, or a DNS name when dnsAllowed.
func checkAddress(addr string, dnsAllowed bool, path fieldPath, r *report) {
	switch {
	case addr == "":
		r.errorf(path, "missing: an address is required")
	case isIP(addr):
	case !dnsAllowed && isDNSName(addr):
		r.errorf(path, "%q is not an IP address; resolution STATIC needs IP addresses "+
			"(set resolution: DNS to use host names)", addr)
	case !isDNSName(addr):
		r.errorf(path, "%q is neither an IP address nor a DNS name", addr)
	}
}

// checkPortMap checks a map from port name to port number, as written in
// WorkloadEntry.ports.
func checkPortMap(ports map[string]uint32, path fieldPath, r *report) {
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		checkPortNumber(ports[name], path.key(name), r)
	}
}

// checkPortNumber checks that n is a usable port number.
func checkPortNumber(n uint32, path fieldPath, r *report) {
	if n < 1 || n > 65535 {
		r.errorf(path, "port %d out of range, want 1-65535", n)
	}
}
