package inject

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/out/ from the current output")

// inputs lists testdata/in/*.yaml.
func inputs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "in", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs in testdata/in: %v", err)
	}
	return files
}

// TestInjectYAMLGolden compares `minimesh inject`'s output for each
// testdata/in/X.yaml with testdata/out/X.yaml. Run `go test ./inject
// -update` to accept a change, then review the diff.
func TestInjectYAMLGolden(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			got := injectFile(t, in)
			out := filepath.Join("testdata", "out", filepath.Base(in))
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got); run with -update to accept:\n%s", out, diff)
			}
		})
	}
}

// injectFile runs InjectYAML with the default configuration on a file.
func injectFile(t *testing.T, path string) []byte {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := InjectYAML(Config{}, in)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestInjectYAMLTwiceIsNoOp: injecting an injected file gives it back byte
// for byte.
func TestInjectYAMLTwiceIsNoOp(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			once := injectFile(t, in)
			twice, err := InjectYAML(Config{}, once)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(once), string(twice)); diff != "" {
				t.Errorf("second injection changed the file (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestInjectYAMLLeavesSkippedFilesAlone: a file with nothing to inject
// comes out exactly as it went in, comments and all.
func TestInjectYAMLLeavesSkippedFilesAlone(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "in", "skipped.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(in), string(injectFile(t, filepath.Join("testdata", "in", "skipped.yaml")))); diff != "" {
		t.Errorf("output differs from input (-in +out):\n%s", diff)
	}
}

// injectedDeployment injects testdata/in/deployment.yaml and returns the
// Deployment from it.
func injectedDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	out := injectFile(t, filepath.Join("testdata", "in", "deployment.yaml"))
	docs := strings.Split(string(out), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want 2 documents (Service, Deployment), got %d", len(docs))
	}
	d := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), d); err != nil {
		t.Fatalf("the injected Deployment does not decode strictly: %v", err)
	}
	return d
}

// container returns the named container of a list, or fails.
func container(t *testing.T, list []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// argAfter returns the argument that follows flag.
func argAfter(t *testing.T, args []string, flag string) string {
	t.Helper()
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("no %s in %q", flag, args)
	return ""
}

// TestInjectedBootstrapValidates expands the proxy's arguments as kubelet
// would for a pod reviews-v1-5d8f9-x2x7q in namespace shop, and reads the
// bootstrap as Envoy would: strict decoding into the bootstrap proto, then
// Envoy's validation rules, including those of the messages packed in Anys.
func TestInjectedBootstrapValidates(t *testing.T) {
	d := injectedDeployment(t)
	proxy := container(t, d.Spec.Template.Spec.InitContainers, "minimesh-proxy")
	kubelet := strings.NewReplacer("$(POD_NAME)", "reviews-v1-5d8f9-x2x7q", "$(POD_NAMESPACE)", "shop")
	var args []string
	for _, a := range proxy.Args {
		args = append(args, kubelet.Replace(a))
	}
	for _, a := range args {
		if strings.Contains(a, "$(") {
			t.Errorf("argument %q refers to a variable the container does not define", a)
		}
	}
	if got := argAfter(t, args, "--service-node"); got != "reviews-v1-5d8f9-x2x7q.shop" {
		t.Errorf("--service-node = %q, want reviews-v1-5d8f9-x2x7q.shop", got)
	}
	if got := argAfter(t, args, "--service-cluster"); got != "reviews" {
		t.Errorf("--service-cluster = %q, want the app label, reviews", got)
	}
	j, err := yaml.YAMLToJSON([]byte(argAfter(t, args, "--config-yaml")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, b); err != nil {
		t.Fatalf("bootstrap does not decode: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("bootstrap: %v", err)
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
			t.Fatal(err)
		}
		if err := hcm.ValidateAll(); err != nil {
			t.Errorf("listener %s: %v", l.GetName(), err)
		}
		if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&routerv3.Router{}); err != nil {
			t.Errorf("listener %s: %v", l.GetName(), err)
		}
	}
	md := b.GetNode().GetMetadata().AsMap()
	if md["NAMESPACE"] != "shop" || md["INTERCEPTION_MODE"] != "REDIRECT" {
		t.Errorf("node metadata = %v, want NAMESPACE shop and INTERCEPTION_MODE REDIRECT", md)
	}
	// The files the bootstrap names are where the volumes are mounted.
	sts := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetGoogleGrpc().GetCallCredentials()[0].GetStsService()
	mounted := map[string]string{}
	for _, m := range proxy.VolumeMounts {
		mounted[m.Name] = m.MountPath
	}
	if sts.GetSubjectTokenPath() != mounted["minimesh-token"]+"/minimesh-token" {
		t.Errorf("token path %q is not in the token volume (mounted at %q)", sts.GetSubjectTokenPath(), mounted["minimesh-token"])
	}
	root := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetGoogleGrpc().GetChannelCredentials().GetSslCredentials().GetRootCerts().GetFilename()
	if root != mounted["minimesh-ca-root-cert"]+"/root-cert.pem" {
		t.Errorf("root certificate %q is not in the ConfigMap volume (mounted at %q)", root, mounted["minimesh-ca-root-cert"])
	}
}

// TestInjectedPodTemplate checks what the cluster relies on, written out
// independently of the code that builds it.
func TestInjectedPodTemplate(t *testing.T) {
	d := injectedDeployment(t)
	tmpl := d.Spec.Template
	if tmpl.Labels["security.istio.io/tlsMode"] != "istio" || tmpl.Labels["app"] != "reviews" {
		t.Errorf("labels = %v", tmpl.Labels)
	}
	if tmpl.Annotations["prometheus.io/scrape"] != "true" || tmpl.Annotations["sidecar.minimesh.io/status"] == "" {
		t.Errorf("annotations = %v", tmpl.Annotations)
	}
	spec := tmpl.Spec
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"minimesh-init", "minimesh-proxy"}, names); diff != "" {
		t.Errorf("init containers (-want +got):\n%s", diff)
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "reviews" {
		t.Errorf("the app's containers changed: %v", spec.Containers)
	}

	init := container(t, spec.InitContainers, "minimesh-init")
	wantCmd := []string{"/minimesh", "init-iptables", "--proxy-uid", "1337", "--inbound-port", "15006",
		"--outbound-port", "15001", "--exclude-inbound-ports", "15021,15090"}
	if diff := cmp.Diff(wantCmd, init.Command); diff != "" {
		t.Errorf("init command (-want +got):\n%s", diff)
	}
	if sc := init.SecurityContext; sc == nil || *sc.RunAsUser != 0 ||
		!cmp.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("init security context = %+v", sc)
	}

	proxy := container(t, spec.InitContainers, "minimesh-proxy")
	if proxy.Image != "envoyproxy/envoy:v1.37.2" || proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("proxy image %q, restart policy %v: want Envoy as a native sidecar", proxy.Image, proxy.RestartPolicy)
	}
	if sc := proxy.SecurityContext; sc == nil || *sc.RunAsUser != 1337 {
		t.Errorf("proxy security context = %+v, want uid 1337", sc)
	}
	env := map[string]string{}
	for _, e := range proxy.Env {
		if e.ValueFrom != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		} else {
			env[e.Name] = e.Value
		}
	}
	wantEnv := map[string]string{
		"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP",
		"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "/etc/minimesh/ca/root-cert.pem",
	}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("proxy env (-want +got):\n%s", diff)
	}
	if p := proxy.ReadinessProbe; p == nil || p.HTTPGet.Path != "/healthz/ready" || p.HTTPGet.Port.IntValue() != 15021 {
		t.Errorf("readiness probe = %+v", p)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	if _, ok := volumes["cache"]; !ok || len(spec.Volumes) != 3 {
		t.Errorf("volumes = %v, want the app's cache plus two", spec.Volumes)
	}
	token := volumes["minimesh-token"].Projected
	if token == nil || token.Sources[0].ServiceAccountToken.Audience != "minimesh" ||
		*token.Sources[0].ServiceAccountToken.ExpirationSeconds != 3600 || token.Sources[0].ServiceAccountToken.Path != "minimesh-token" {
		t.Errorf("token volume = %+v", volumes["minimesh-token"])
	}
	if cm := volumes["minimesh-ca-root-cert"].ConfigMap; cm == nil || cm.Name != "minimesh-ca-root-cert" {
		t.Errorf("root certificate volume = %+v", volumes["minimesh-ca-root-cert"])
	}
}

func TestInjectYAMLErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want string
	}{
		"no template":  {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n", "Deployment web: spec.template: missing"},
		"no pod spec":  {"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n", "pod spec: missing"},
		"bad yaml":     {"apiVersion: v1\nkind: Pod\n  metadata: [\n", "document 1"},
		"name clash":   {"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: minimesh-proxy, image: envoy}]\n", `Pod shop/web: container "minimesh-proxy": the name is reserved`},
		"second doc":   {"kind: ConfigMap\napiVersion: v1\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {}}\n", "document 2: CronJob c: spec.jobTemplate.spec: missing"},
		"typed errors": {"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: 3}\n", "pod template"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := InjectYAML(Config{}, []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
