package inject

import (
	"encoding/json"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/minimesh/minimesh/bootstrap"
)

// Status is the value of StatusAnnotation (as JSON): what injection added,
// for people reading the pod and for tools that remove the sidecar.
type Status struct {
	InitContainers []string `json:"initContainers"`
	Volumes        []string `json:"volumes"`
	ProxyImage     string   `json:"proxyImage"`
	InitImage      string   `json:"initImage"`
}

// sidecar is everything injection adds to one pod.
type sidecar struct {
	initContainers []corev1.Container // minimesh-init, then minimesh-proxy
	volumes        []corev1.Volume
	status         string // StatusAnnotation's value
}

// newSidecar builds the containers and volumes for a pod with this
// metadata. c has its defaults; envoyBootstrap is c's sidecar bootstrap.
func newSidecar(c Config, envoyBootstrap string, meta *metav1.ObjectMeta) (sidecar, error) {
	s := sidecar{
		initContainers: []corev1.Container{initContainer(c), proxyContainer(c, envoyBootstrap, serviceCluster(meta))},
		volumes:        []corev1.Volume{tokenVolume(), rootCertVolume()},
	}
	st := Status{ProxyImage: c.ProxyImage, InitImage: c.InitImage}
	for _, ic := range s.initContainers {
		st.InitContainers = append(st.InitContainers, ic.Name)
	}
	for _, v := range s.volumes {
		st.Volumes = append(st.Volumes, v.Name)
	}
	j, err := json.Marshal(st)
	if err != nil {
		return sidecar{}, err
	}
	s.status = string(j)
	return s, nil
}

// initContainer installs the iptables redirect, then exits. It needs root
// and NET_ADMIN (to change the pod's nat table) and NET_RAW (iptables
// opens raw sockets); it drops every other capability.
func initContainer(c Config) corev1.Container {
	return corev1.Container{
		Name:  InitContainerName,
		Image: c.InitImage,
		Command: []string{
			"/minimesh", "init-iptables",
			"--proxy-uid", strconv.Itoa(ProxyUID),
			"--inbound-port", strconv.Itoa(InboundCapturePort),
			"--outbound-port", strconv.Itoa(OutboundCapturePort),
			"--exclude-inbound-ports", strconv.Itoa(bootstrap.HealthPort) + "," + strconv.Itoa(MetricsPort),
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsGroup:               ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
	}
}

// proxyContainer is Envoy, started as a native sidecar (restartPolicy
// Always) so that it runs before and after the app containers. Its node ID
// and namespace come from the downward API through kubelet's $(VAR)
// expansion of the arguments.
func proxyContainer(c Config, envoyBootstrap, cluster string) corev1.Container {
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: bootstrap.ReadyPath,
				Port: intstr.FromInt32(bootstrap.HealthPort),
			}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
		}
	}
	return corev1.Container{
		Name:          ProxyContainerName,
		Image:         c.ProxyImage,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Command:       []string{"envoy"},
		Args: []string{
			"--config-yaml", envoyBootstrap,
			"--service-node", "$(POD_NAME).$(" + bootstrap.PodNamespaceEnv + ")",
			"--service-cluster", cluster,
			// Hot restart needs shared memory; a restarted container is a
			// new Envoy anyway.
			"--disable-hot-restart",
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv(bootstrap.PodNamespaceEnv, "metadata.namespace"),
			fieldEnv("POD_IP", "status.podIP"),
			// gRPC's HTTP client checks the token exchange endpoint's
			// certificate against these roots.
			{Name: "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", Value: rootCertDir + "/" + RootCertKey},
		},
		Ports: []corev1.ContainerPort{{Name: "minimesh-health", ContainerPort: bootstrap.HealthPort, Protocol: corev1.ProtocolTCP}},
		// The app containers start once this succeeds: Envoy has its
		// first configuration, or gave up waiting for it (15 s).
		StartupProbe:   probe(1, 60),
		ReadinessProbe: probe(2, 3),
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolumeName, MountPath: tokenDir, ReadOnly: true},
			{Name: RootCertVolumeName, MountPath: rootCertDir, ReadOnly: true},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](ProxyUID),
			RunAsGroup:               ptr.To[int64](ProxyUID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// fieldEnv is an environment variable from the downward API.
func fieldEnv(name, field string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: field},
	}}
}

// serviceCluster is Envoy's --service-cluster, which appears in its stats
// and logs: the pod's app label when it has one, else the pod's name.
func serviceCluster(meta *metav1.ObjectMeta) string {
	for _, key := range []string{"app.kubernetes.io/name", "app"} {
		if v := meta.Labels[key]; v != "" {
			return v
		}
	}
	return "$(POD_NAME)"
}

// tokenVolume is the service-account token Envoy presents to minimesh:
// meant for minimesh only (audience), valid for an hour, and rewritten by
// kubelet before it expires. Kubelet makes it readable by uid 1337 (mode
// 0644) because the pod's containers run as different users.
func tokenVolume() corev1.Volume {
	return corev1.Volume{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          TokenAudience,
				ExpirationSeconds: ptr.To[int64](3600),
				Path:              tokenFile,
			},
		}}},
	}}
}

// rootCertVolume is the mesh's root certificate, from the ConfigMap that
// minimesh keeps in every injected namespace. The pod does not start
// without it: Envoy could not check whom it talks to.
func rootCertVolume() corev1.Volume {
	return corev1.Volume{Name: RootCertVolumeName, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: RootCertConfigMap},
			Items:                []corev1.KeyToPath{{Key: RootCertKey, Path: RootCertKey}},
		},
	}}
}
