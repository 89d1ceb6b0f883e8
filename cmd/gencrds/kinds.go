package main

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// group is an Istio API group: every kind in it is served in the same
// versions, with one of them stored.
type group struct {
	name       string
	versions   []string // in the order they are listed in the CRD
	storage    string   // the version etcd holds
	categories []string // `kubectl get istio-io` lists every Istio kind
}

// Istio serves every version of a group with the same schema, and so do we:
// the Go types of the oldest version decode all of them (mesh/decode.go).
var (
	networkingGroup = group{
		name:       "networking.istio.io",
		versions:   []string{"v1alpha3", "v1beta1", "v1"},
		storage:    "v1",
		categories: []string{"istio-io", "networking-istio-io"},
	}
	securityGroup = group{
		name:       "security.istio.io",
		versions:   []string{"v1beta1", "v1"},
		storage:    "v1",
		categories: []string{"istio-io", "security-istio-io"},
	}
)

// kind is one custom resource: its names as Istio registers them (so that
// `kubectl get vs` works the same with either set of CRDs), the protobuf
// message of its spec, and the columns `kubectl get` prints.
type kind struct {
	group      group
	kind       string
	plural     string
	shortNames []string
	spec       protoreflect.MessageDescriptor
	columns    []apiextv1.CustomResourceColumnDefinition
}

// kinds are the Istio kinds minimesh reads, in the order they are written.
var kinds = []kind{
	{
		group:      networkingGroup,
		kind:       "DestinationRule",
		plural:     "destinationrules",
		shortNames: []string{"dr"},
		spec:       (&networking.DestinationRule{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Host", ".spec.host", "The service the rule applies to."),
		},
	},
	{
		group:      networkingGroup,
		kind:       "ServiceEntry",
		plural:     "serviceentries",
		shortNames: []string{"se"},
		spec:       (&networking.ServiceEntry{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Hosts", ".spec.hosts", "The hosts the entry declares."),
			stringColumn("Location", ".spec.location", "Whether the service is inside or outside the mesh."),
			stringColumn("Resolution", ".spec.resolution", "How the addresses of the service are found."),
		},
	},
	{
		group:      networkingGroup,
		kind:       "VirtualService",
		plural:     "virtualservices",
		shortNames: []string{"vs"},
		spec:       (&networking.VirtualService{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Gateways", ".spec.gateways", "The gateways the routes apply to (none: the sidecars)."),
			stringColumn("Hosts", ".spec.hosts", "The hosts the routes apply to."),
		},
	},
	{
		group:  networkingGroup,
		kind:   "Sidecar",
		plural: "sidecars",
		spec:   (&networking.Sidecar{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Egress", ".spec.egress[*].hosts", "The hosts the selected proxies are configured for."),
		},
	},
	{
		group:      networkingGroup,
		kind:       "WorkloadEntry",
		plural:     "workloadentries",
		shortNames: []string{"we"},
		spec:       (&networking.WorkloadEntry{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Address", ".spec.address", "The address of the workload."),
		},
	},
	{
		group:      securityGroup,
		kind:       "PeerAuthentication",
		plural:     "peerauthentications",
		shortNames: []string{"pa"},
		spec:       (&security.PeerAuthentication{}).ProtoReflect().Descriptor(),
		columns: []apiextv1.CustomResourceColumnDefinition{
			stringColumn("Mode", ".spec.mtls.mode", "The mutual TLS mode of the workloads it selects."),
		},
	},
}

// stringColumn is a `kubectl get` column showing a field of the object.
func stringColumn(name, jsonPath, description string) apiextv1.CustomResourceColumnDefinition {
	return apiextv1.CustomResourceColumnDefinition{
		Name: name, Type: "string", JSONPath: jsonPath, Description: description,
	}
}

// ageColumn is the column every kind ends with, as for built-in kinds.
var ageColumn = apiextv1.CustomResourceColumnDefinition{
	Name:        "Age",
	Type:        "date",
	JSONPath:    ".metadata.creationTimestamp",
	Description: "Time since the object was created.",
}
