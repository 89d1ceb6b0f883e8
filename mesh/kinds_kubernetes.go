package mesh

// Kubernetes' own registry enters the model in the shape of the Istio
// objects it stands for, so that it goes through the same conversion and
// validation as everything else: a Service is built as a ServiceEntry (its
// host, ports and ready endpoints) and a Pod as a WorkloadEntry (its address,
// labels and service account).
//
// They keep their own kind in Ref. Messages then name the real object
// ("Service default/reviews"), and a ServiceEntry that a user named
// "reviews" is a different object, not a duplicate. Decode never produces
// these kinds: only watcher/kube does.

// kubernetesKinds maps a Kubernetes kind to the Istio kind whose spec it is
// given in.
var kubernetesKinds = map[string]string{
	"Service": "ServiceEntry",
	"Pod":     "WorkloadEntry",
}

// specKind returns the kind whose spec an object of the given kind carries:
// the kind itself, or the Istio kind a Kubernetes kind is built as.
func specKind(kind string) string {
	if k, ok := kubernetesKinds[kind]; ok {
		return k
	}
	return kind
}
