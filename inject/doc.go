// Package inject adds minimesh's Envoy sidecar to pods: `minimesh inject`
// does it to the pod templates of a YAML file, and the mutating admission
// webhook (NewWebhook) to pods as they are created in labeled namespaces.
// Both build the same list of JSON Patch operations (Patch), so a pod
// gets the same sidecar either way.
//
// An injected pod gets:
//   - the label security.istio.io/tlsMode=istio, which tells minimesh's
//     translator that the pod accepts mutual TLS, and the annotation
//     sidecar.minimesh.io/status, which records what was added so that
//     injecting again changes nothing;
//   - the init container minimesh-init, which runs `minimesh init-iptables`
//     as root with NET_ADMIN and NET_RAW to redirect every TCP connection
//     into and out of the pod to Envoy (package inject/iptables);
//   - the sidecar minimesh-proxy: Envoy, as uid 1337 (whose traffic is not
//     redirected), with its bootstrap on the command line
//     (bootstrap.KubernetesEnvoy) and node ID "<pod>.<namespace>". It is a
//     Kubernetes "native sidecar" (an init container with restartPolicy
//     Always): it starts before the app containers, the app starts only
//     once Envoy is ready (its startup probe), and Jobs complete although
//     Envoy never exits on its own;
//   - two volumes for the proxy: a projected service-account token
//     (audience "minimesh"), which Envoy exchanges at minimesh's token
//     endpoint to authenticate its xDS stream, and the ConfigMap
//     minimesh-ca-root-cert holding the mesh's root certificate, which it
//     checks minimesh's certificate against.
//
// Why the bootstrap travels in the container's arguments rather than in a
// file: a file would need a writer (the init container, or a ConfigMap per
// namespace) and a shared volume, and it would go stale when minimesh's
// settings change while the pod template stays the same. In the arguments
// it is visible in `kubectl get pod -o yaml`, identical for every replica,
// and kubelet expands the one per-pod value it holds, the namespace, from
// the downward API, as it does for the node ID.
//
// Probes: kubelet's probes of the app's ports arrive from outside the pod,
// so the iptables rules send them through Envoy's inbound listener like any
// other connection. They keep working as long as that port accepts
// plaintext (PERMISSIVE mTLS, the default); under STRICT mTLS a plain HTTP
// probe is refused, so use an exec probe or exclude the port from capture.
// The sidecar's own health port (15021) and metrics port (15090) are
// excluded from capture.
//
// Pods with hostNetwork, pods annotated sidecar.minimesh.io/inject: "false",
// and pods already injected are left alone. This package imports the
// Kubernetes API types and minimesh's bootstrap package, nothing else of
// minimesh.
package inject
