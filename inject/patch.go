package inject

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Operation is one JSON Patch (RFC 6902) operation. Injection only adds.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Skip reasons: why Patch leaves a pod alone.
const (
	SkipOptedOut        = "annotated " + InjectAnnotation + `: "false"`
	SkipAlreadyInjected = "already injected (annotation " + StatusAnnotation + ")"
	SkipHostNetwork     = "uses the host's network, which the redirect would capture"
)

// Patch returns the JSON Patch that injects the sidecar into a pod (or a
// pod template) with this metadata and spec, or, when the pod is to be
// left alone, why (skip). The paths are relative to the pod: /metadata and
// /spec. The pod itself is not changed.
func Patch(c Config, meta *metav1.ObjectMeta, spec *corev1.PodSpec) (ops []Operation, skip string, err error) {
	if skip := skipReason(meta, spec); skip != "" {
		return nil, skip, nil
	}
	if err := checkNoClash(spec); err != nil {
		return nil, "", err
	}
	c = c.withDefaults()
	envoyBootstrap, err := c.sidecarBootstrap()
	if err != nil {
		return nil, "", err
	}
	s, err := newSidecar(c, envoyBootstrap, meta)
	if err != nil {
		return nil, "", err
	}
	ops = append(ops, addToMap("/metadata/labels", meta.Labels, TLSModeLabel, TLSModeIstio))
	ops = append(ops, addToMap("/metadata/annotations", meta.Annotations, StatusAnnotation, s.status))
	ops = append(ops, prependToList("/spec/initContainers", len(spec.InitContainers), s.initContainers)...)
	ops = append(ops, appendToList("/spec/volumes", len(spec.Volumes), s.volumes)...)
	if spec.ServiceAccountName == "" {
		ops = append(ops, Operation{Op: "add", Path: "/spec/serviceAccountName", Value: serviceAccount(spec)})
	}
	return ops, "", nil
}

// serviceAccount is the service account a pod without serviceAccountName
// runs as. Kubernetes refuses a projected token without a service account
// name; its ServiceAccount admission plugin fills in the same one, but a
// manifest from `minimesh inject` must be valid without it.
func serviceAccount(spec *corev1.PodSpec) string {
	if spec.DeprecatedServiceAccount != "" {
		return spec.DeprecatedServiceAccount
	}
	return "default"
}

// skipReason says why a pod is not to be injected, or "".
func skipReason(meta *metav1.ObjectMeta, spec *corev1.PodSpec) string {
	switch {
	case strings.EqualFold(meta.Annotations[InjectAnnotation], "false"):
		return SkipOptedOut
	case meta.Annotations[StatusAnnotation] != "":
		return SkipAlreadyInjected
	case spec.HostNetwork:
		return SkipHostNetwork
	}
	return ""
}

// checkNoClash refuses a pod that already has a container or volume with
// one of the sidecar's names but no status annotation: injecting would
// duplicate the name, and the pod would be refused.
func checkNoClash(spec *corev1.PodSpec) error {
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, ctr := range list {
			if ctr.Name == InitContainerName || ctr.Name == ProxyContainerName {
				return fmt.Errorf("container %q: the name is reserved for the sidecar, "+
					"and the pod has no %s annotation to show it was injected", ctr.Name, StatusAnnotation)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Name == TokenVolumeName || v.Name == RootCertVolumeName {
			return fmt.Errorf("volume %q: the name is reserved for the sidecar, "+
				"and the pod has no %s annotation to show it was injected", v.Name, StatusAnnotation)
		}
	}
	return nil
}

// addToMap sets key in the string map at path, creating the map when the
// pod has none.
func addToMap(path string, current map[string]string, key, value string) Operation {
	if current == nil {
		return Operation{Op: "add", Path: path, Value: map[string]string{key: value}}
	}
	return Operation{Op: "add", Path: path + "/" + escapePointer(key), Value: value}
}

// prependToList puts items at the front of the list at path, in order,
// creating the list when it is empty.
func prependToList[T any](path string, length int, items []T) []Operation {
	if length == 0 {
		return []Operation{{Op: "add", Path: path, Value: items}}
	}
	ops := make([]Operation, len(items))
	for i, item := range items {
		ops[i] = Operation{Op: "add", Path: fmt.Sprintf("%s/%d", path, i), Value: item}
	}
	return ops
}

// appendToList puts items at the end of the list at path, creating the list
// when it is empty.
func appendToList[T any](path string, length int, items []T) []Operation {
	if length == 0 {
		return []Operation{{Op: "add", Path: path, Value: items}}
	}
	ops := make([]Operation, len(items))
	for i, item := range items {
		ops[i] = Operation{Op: "add", Path: path + "/-", Value: item}
	}
	return ops
}

// escapePointer escapes a map key for a JSON Pointer (RFC 6901): "~" and
// "/" are special.
func escapePointer(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
