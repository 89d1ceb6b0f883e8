package kubernetes

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/minimesh/minimesh/bootstrap"
)

// installed is every object of the install files, decoded.
func installed(t *testing.T) []runtime.Object {
	t.Helper()
	decoder := serializer.NewCodecFactory(kubeScheme()).UniversalDeserializer()
	var objs []runtime.Object
	for _, file := range installFiles {
		for i, doc := range readDocuments(t, file) {
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s#%d: %v", file, i+1, err)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

// only returns the one object of type T, failing unless there is exactly one.
func only[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

// flags parses "--name=value" arguments; a bare "--name" is "true".
func flags(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			value = "true"
		}
		out[name] = value
	}
	return out
}

// TestInstallFitsTogether follows each path a client takes into minimesh
// (a sidecar's xDS and token exchange, the API server's webhook call,
// kubelet's probe) through the Service to a container port, and checks it
// arrives where the server listens. Names shared between files (the CA
// Secret, the webhook configuration) must agree with the RBAC that grants
// them.
func TestInstallFitsTogether(t *testing.T) {
	objs := installed(t)
	deploy := only[*appsv1.Deployment](t, objs)
	svc := only[*corev1.Service](t, objs)
	webhook := only[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs)
	role := only[*rbacv1.Role](t, objs)
	clusterRole := only[*rbacv1.ClusterRole](t, objs)

	if deploy.Namespace != "minimesh-system" || svc.Namespace != "minimesh-system" || svc.Name != "minimesh" {
		t.Errorf("Deployment in %q, Service %s/%s; want both in minimesh-system, Service minimesh", deploy.Namespace, svc.Namespace, svc.Name)
	}
	if *deploy.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *deploy.Spec.Replicas)
	}
	container := deploy.Spec.Template.Spec.Containers[0]
	args := flags(container.Args)
	if container.Args[0] != "serve" || args["kubernetes"] != "true" {
		t.Errorf("args %v: want serve --kubernetes", container.Args)
	}
	// The image runs serve --kubernetes, which only a build with -tags
	// kubernetes has.
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	build := regexp.MustCompile(`(?m)^RUN .*go build .*\./cmd/minimesh$`).Find(dockerfile)
	var tags []string
	if m := regexp.MustCompile(`-tags[ =](\S+)`).FindSubmatch(build); m != nil {
		tags = strings.Split(string(m[1]), ",")
	}
	if !slices.Contains(tags, "kubernetes") {
		t.Errorf("the Dockerfile builds minimesh with %q, which has no Kubernetes mode; want -tags kubernetes", build)
	}

	// listenPort is the port a server flag binds.
	listenPort := func(flag string) int32 {
		_, port, err := net.SplitHostPort(args[flag])
		if err != nil {
			t.Fatalf("--%s=%q: %v", flag, args[flag], err)
		}
		n, _ := strconv.Atoi(port)
		return int32(n)
	}
	// containerPortOf resolves a Service port to the container port behind it.
	containerPortOf := func(servicePort int32) int32 {
		for _, p := range svc.Spec.Ports {
			if p.Port != servicePort {
				continue
			}
			for _, cp := range container.Ports {
				if cp.Name == p.TargetPort.StrVal || cp.ContainerPort == p.TargetPort.IntVal {
					return cp.ContainerPort
				}
			}
			t.Errorf("service port %d: target %s is no container port", servicePort, p.TargetPort.String())
			return 0
		}
		t.Errorf("service has no port %d", servicePort)
		return 0
	}

	xds := hostPort(t, "tcp://"+bootstrap.DefaultKubernetesXDSAddress)
	sts := hostPort(t, bootstrap.DefaultTokenExchangeURL)
	for _, path := range []struct {
		what string
		addr [2]string // host, port the client dials
		flag string
	}{
		{"sidecar xDS", xds, "xds-address"},
		{"sidecar token exchange", sts, "sts-address"},
		{"API server to webhook", [2]string{webhook.Webhooks[0].ClientConfig.Service.Name + "." + webhook.Webhooks[0].ClientConfig.Service.Namespace + ".svc",
			strconv.Itoa(int(*webhook.Webhooks[0].ClientConfig.Service.Port))}, "webhook-address"},
	} {
		if path.addr[0] != "minimesh.minimesh-system.svc" {
			t.Errorf("%s dials %s, not the Service minimesh.minimesh-system.svc", path.what, path.addr[0])
		}
		port, _ := strconv.Atoi(path.addr[1])
		if got, want := containerPortOf(int32(port)), listenPort(path.flag); got != want {
			t.Errorf("%s: service port %d reaches container port %d, but --%s listens on %d", path.what, port, got, path.flag, want)
		}
	}
	if names := args["xds-server-names"]; !slices.Contains(strings.Split(names, ","), xds[0]) {
		t.Errorf("--xds-server-names=%s lacks %s, the name sidecars dial", names, xds[0])
	}

	probe := container.ReadinessProbe.HTTPGet
	for _, cp := range container.Ports {
		if cp.Name == probe.Port.StrVal && cp.ContainerPort != listenPort("health-address") {
			t.Errorf("readiness probe port %s is %d, --health-address listens on %d", cp.Name, cp.ContainerPort, listenPort("health-address"))
		}
	}
	if probe.Path != "/readyz" {
		t.Errorf("readiness probe path %s, want /readyz", probe.Path)
	}

	if !grantsName(role.Rules, "secrets", args["ca-secret"]) {
		t.Errorf("--ca-secret=%s, but the Role grants get on secrets %v", args["ca-secret"], role.Rules)
	}
	if !grantsName(clusterRole.Rules, "mutatingwebhookconfigurations", webhook.Name) {
		t.Errorf("webhook configuration %s is not the one the ClusterRole lets minimesh patch", webhook.Name)
	}
}

// hostPort splits the host and port out of a URL.
func hostPort(t *testing.T, raw string) [2]string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return [2]string{u.Hostname(), u.Port()}
}

// grantsName reports whether a rule grants get on the named object.
func grantsName(rules []rbacv1.PolicyRule, resource, name string) bool {
	for _, r := range rules {
		if slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, "get") &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}
