package mesh

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The allowlists below are the Istio fields minimesh implements, per kind.
// They are the single source of truth for "what does minimesh support": the
// decoder warns about every other field that is set, and the README table is
// generated from them.
//
// A path is written relative to spec, with the camelCase names used in YAML,
// without list indices or map keys: "http.match.headers.exact" stands for
// spec.http[*].match[*].headers[<any name>].exact. A path names a field and
// everything below it.

// trafficPolicyFields are the TrafficPolicy fields of a DestinationRule,
// accepted at the top level and in each subset.
var trafficPolicyFields = []string{
	"loadBalancer.simple",
	"connectionPool.tcp.maxConnections",
	"connectionPool.tcp.connectTimeout",
	"connectionPool.http.http1MaxPendingRequests",
	"connectionPool.http.http2MaxRequests",
	"connectionPool.http.maxRequestsPerConnection",
	"connectionPool.http.maxRetries",
	"connectionPool.http.idleTimeout",
	"outlierDetection.consecutive5xxErrors",
	"outlierDetection.consecutiveGatewayErrors",
	"outlierDetection.interval",
	"outlierDetection.baseEjectionTime",
	"outlierDetection.maxEjectionPercent",
	"tls.mode",
	"tls.clientCertificate",
	"tls.privateKey",
	"tls.caCertificates",
	"tls.subjectAltNames",
	"tls.sni",
	"tls.insecureSkipVerify",
}

// stringMatchFields are the ways a StringMatch compares.
var stringMatchFields = []string{"exact", "prefix", "regex"}

var supportedFields = map[string][]string{
	"ServiceEntry": {
		"hosts",
		"addresses",
		"ports.number",
		"ports.name",
		"ports.protocol",
		"ports.targetPort",
		"location",
		"resolution",
		"endpoints.address",
		"endpoints.ports",
		"endpoints.labels",
		"endpoints.serviceAccount",
		"endpoints.weight",
		"workloadSelector.labels",
	},
	"WorkloadEntry": {
		"address",
		"labels",
		"serviceAccount",
		"ports",
	},
	"VirtualService": concat(
		[]string{
			"hosts",
			"gateways", // only empty or ["mesh"]; checked by the converter
			"http.name",
			"http.match.name",
			"http.match.gateways", // a block for gateways only never matches
		},
		prefixed("http.match.uri.", stringMatchFields),
		prefixed("http.match.headers.", stringMatchFields),
		prefixed("http.match.method.", stringMatchFields),
		[]string{
			"http.route.destination.host",
			"http.route.destination.subset",
			"http.route.destination.port.number",
			"http.route.weight",
			"http.timeout",
			"http.retries.attempts",
			"http.retries.perTryTimeout",
			"http.retries.retryOn",
		},
	),
	"DestinationRule": concat(
		[]string{"host"},
		prefixed("trafficPolicy.", trafficPolicyFields),
		[]string{"subsets.name", "subsets.labels"},
		prefixed("subsets.trafficPolicy.", trafficPolicyFields),
	),
	"PeerAuthentication": {
		"selector.matchLabels",
		"mtls.mode",
		"portLevelMtls.mode",
	},
	"Sidecar": {
		"workloadSelector.labels",
		"egress.hosts",
	},
}

// unsupportedConsequences says what happens, for a kind, when an
// unsupported field below a path prefix is set, if it is more than
// "ignored". Ignoring a match condition would make a rule match more
// requests than its author meant (a rule for `sourceLabels: {app: tester}`
// would catch everyone), so such a match block is skipped instead.
var unsupportedConsequences = []struct{ kind, prefix, message string }{
	{"VirtualService", "http.match.", "not supported by minimesh; this match block is skipped (it never matches)"},
	{"DestinationRule", "trafficPolicy.tls.credentialName", noSecrets},
	{"DestinationRule", "trafficPolicy.tls.caCertCredentialName", noSecrets},
	{"DestinationRule", "subsets.trafficPolicy.tls.credentialName", noSecrets},
	{"DestinationRule", "subsets.trafficPolicy.tls.caCertCredentialName", noSecrets},
}

// noSecrets explains why credentialName is ignored.
const noSecrets = "Kubernetes secrets are not supported by minimesh, ignored; " +
	"use clientCertificate, privateKey and caCertificates (files)"

// SupportedFields returns the spec fields minimesh implements for kind
// ("VirtualService", ...), as paths relative to spec such as
// "http.route.destination.subset". It returns nil for unknown kinds.
func SupportedFields(kind string) []string {
	return slices.Clone(supportedFields[kind])
}

// SupportedKinds returns the Istio kinds minimesh reads, sorted, for
// SupportedFields.
func SupportedKinds() []string {
	return slices.Sorted(maps.Keys(supportedFields))
}

// concat joins lists of paths.
func concat(lists ...[]string) []string {
	return slices.Concat(lists...)
}

// prefixed returns the paths with prefix in front of each.
func prefixed(prefix string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = prefix + p
	}
	return out
}

// fieldSet is an allowlist made ready for lookups while walking a message.
type fieldSet struct {
	// leaves are the supported paths: the field and everything below it.
	leaves map[string]bool
	// inner are the paths on the way to a supported field: the field itself
	// is allowed, but its own fields must be checked one by one.
	inner map[string]bool
}

// newFieldSet indexes an allowlist.
func newFieldSet(paths []string) fieldSet {
	s := fieldSet{leaves: map[string]bool{}, inner: map[string]bool{}}
	for _, p := range paths {
		s.leaves[p] = true
		for i := strings.Index(p, "."); i >= 0; i = nextDot(p, i) {
			s.inner[p[:i]] = true
		}
	}
	return s
}

// nextDot returns the index of the next "." in p after index i, or -1.
func nextDot(p string, i int) int {
	j := strings.Index(p[i+1:], ".")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// fieldSets holds the indexed allowlist of every kind.
var fieldSets = func() map[string]fieldSet {
	sets := map[string]fieldSet{}
	for kind, paths := range supportedFields {
		sets[kind] = newFieldSet(paths)
	}
	return sets
}()

// unsupportedField is a field that is set but not implemented.
type unsupportedField struct {
	path    fieldPath // "spec.http[0].fault"
	pattern string    // "http.fault", as in the allowlist
}

// findUnsupported walks m, a message found at pattern (allowlist notation,
// "" for the spec itself) and path, and returns the fields set in it that
// the allowlist of kind does not cover, in field order.
func findUnsupported(kind string, m proto.Message, pattern string, path fieldPath) []unsupportedField {
	set, ok := fieldSets[kind]
	if !ok {
		return nil
	}
	return set.walk(m.ProtoReflect(), pattern, path, nil)
}

// walk appends the unsupported fields set in m to found.
func (s fieldSet) walk(m protoreflect.Message, pattern string, path fieldPath, found []unsupportedField) []unsupportedField {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		p := fd.JSONName()
		if pattern != "" {
			p = pattern + "." + p
		}
		fp := path.field(fd.JSONName())
		switch {
		case s.leaves[p]:
			// Supported with everything below it.
		case s.inner[p] && fd.Message() != nil:
			found = s.walkValue(fd, m.Get(fd), p, fp, found)
		default:
			found = append(found, unsupportedField{path: fp, pattern: p})
		}
	}
	return found
}

// walkValue walks the message, list of messages or map of messages held by
// field fd.
func (s fieldSet) walkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, pattern string, path fieldPath, found []unsupportedField) []unsupportedField {
	switch {
	case fd.IsList():
		list := v.List()
		for i := 0; i < list.Len(); i++ {
			found = s.walk(list.Get(i).Message(), pattern, path.index(i), found)
		}
	case fd.IsMap():
		if fd.MapValue().Message() == nil {
			return found
		}
		m := v.Map()
		for _, k := range sortedMapKeys(m) {
			found = s.walk(m.Get(k).Message(), pattern, path.key(k.String()), found)
		}
	default:
		found = s.walk(v.Message(), pattern, path, found)
	}
	return found
}

// sortedMapKeys returns the keys of a protobuf map in a stable order.
func sortedMapKeys(m protoreflect.Map) []protoreflect.MapKey {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
		return strings.Compare(a.String(), b.String())
	})
	return keys
}

// unsupportedMessage says what happens to an unsupported field of kind.
func unsupportedMessage(kind, pattern string) string {
	for _, c := range unsupportedConsequences {
		if c.kind == kind && strings.HasPrefix(pattern, c.prefix) {
			return c.message
		}
	}
	return "not supported by minimesh, ignored"
}

// UnsupportedFields returns a warning for every field set in obj's spec
// that minimesh does not implement, naming its path:
// "spec.http[0].fault: not supported by minimesh, ignored". Decode reports
// these already; a source that builds Objects itself (the Kubernetes
// watcher) calls it to give the same warnings.
func UnsupportedFields(obj Object) []Diagnostic {
	if obj.Spec == nil {
		return nil
	}
	var diags []Diagnostic
	r := newReport(obj.Ref, &diags)
	for _, u := range findUnsupported(obj.Ref.Kind, obj.Spec, "", "spec") {
		r.warnf(u.path, "%s", unsupportedMessage(obj.Ref.Kind, u.pattern))
	}
	return diags
}
