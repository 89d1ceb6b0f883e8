// Package kube is the Kubernetes source: it watches a cluster through
// client-go shared informers (Services, EndpointSlices, Pods, Namespaces,
// and Istio's VirtualServices, DestinationRules, PeerAuthentications,
// ServiceEntries and WorkloadEntries through istio.io/client-go) and emits a
// complete mesh.Snapshot each time they change.
//
// The cluster's registry goes through the same conversion as the Istio
// objects and the files of watcher/file: a Service becomes a "Service"
// object with a ServiceEntry spec (its host, ports and ready endpoints), a
// Pod a "Pod" object with a WorkloadEntry spec, and mesh.Build does the rest.
// So both sources produce the same Snapshot for the same mesh.
//
// Nothing is published before every informer has synced. Bursts of events
// are debounced (a hold-off restarted by each event, and a ceiling), and
// snapshots that change nothing are dropped. An invalid object keeps being
// served in its last good version; it gets a Warning Event, a status
// condition when its CRD has a status, a log line and a count.
//
// kube imports mesh and Kubernetes client code: it knows nothing of Envoy.
package kube
