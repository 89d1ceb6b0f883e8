package docker

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// repoRoot is where docker-compose.yaml lives; paths in it are relative to it.
const repoRoot = "../.."

// meshNetwork is the compose network on which workloads have fixed IPs.
const meshNetwork = "mesh"

// compose is the part of docker-compose.yaml these tests read.
type compose struct {
	Services map[string]service `json:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `json:"subnet"`
			} `json:"config"`
		} `json:"ipam"`
	} `json:"networks"`
}

// service is one compose service.
type service struct {
	Image       string            `json:"image"`
	Build       any               `json:"build"` // "dir" or {context, dockerfile}
	Command     []string          `json:"command"`
	NetworkMode string            `json:"network_mode"`
	Volumes     []string          `json:"volumes"`
	Environment map[string]string `json:"environment"`
	Networks    map[string]struct {
		IPv4Address string `json:"ipv4_address"`
	} `json:"networks"`
}

// loadCompose parses docker-compose.yaml.
func loadCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yaml has no services")
	}
	return c
}

// envoyServices returns the names of the services that run Envoy.
func (c compose) envoyServices() []string {
	var names []string
	for name, s := range c.Services {
		if imageName(s.Image) == "envoyproxy/envoy" {
			names = append(names, name)
		}
	}
	return names
}

// imageName is an image reference without its tag or digest.
func imageName(image string) string {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	return name
}

// sharedNamespace returns the service whose network namespace s joins
// (network_mode "service:NAME"), or "".
func (s service) sharedNamespace() string {
	name, _ := strings.CutPrefix(s.NetworkMode, "service:")
	if name == s.NetworkMode {
		return ""
	}
	return name
}

// mount returns the host path mounted at target, relative to the repository
// root, or "" when nothing is.
func (s service) mount(target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0]
		}
	}
	return ""
}

// buildFiles returns the build context and Dockerfile of s, as paths
// relative to the repository root, or "" when s is not built.
func (s service) buildFiles() (context, dockerfile string) {
	switch b := s.Build.(type) {
	case string:
		return b, filepath.Join(b, "Dockerfile")
	case map[string]any:
		context, _ = b["context"].(string)
		dockerfile, _ = b["dockerfile"].(string)
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		return context, filepath.Join(context, dockerfile)
	}
	return "", ""
}

func TestEnvoyImagesArePinned(t *testing.T) {
	c := loadCompose(t)
	envoys := c.envoyServices()
	if len(envoys) == 0 {
		t.Fatal("no service runs envoyproxy/envoy")
	}
	for _, name := range envoys {
		image := c.Services[name].Image
		tag := strings.TrimPrefix(image, "envoyproxy/envoy:")
		if tag == image || !isReleaseTag(tag) {
			t.Errorf("service %s: image %q is not pinned to a release (envoyproxy/envoy:vX.Y.Z)", name, image)
		}
	}
}

// isReleaseTag reports whether tag looks like "v1.37.2".
func isReleaseTag(tag string) bool {
	parts := strings.Split(strings.TrimPrefix(tag, "v"), ".")
	if !strings.HasPrefix(tag, "v") || len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func TestBuildFilesExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		context, dockerfile := s.buildFiles()
		if context == "" {
			t.Errorf("service %s: build has no context", name)
			continue
		}
		if fi, err := os.Stat(filepath.Join(repoRoot, context)); err != nil || !fi.IsDir() {
			t.Errorf("service %s: build context %s is not a directory", name, context)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, dockerfile)); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

func TestEveryServiceHasImageOrBuild(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if (s.Image == "") == (s.Build == nil) {
			t.Errorf("service %s: want exactly one of image and build", name)
		}
	}
}

func TestNetworkModeTargetsExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.NetworkMode == "" {
			continue
		}
		target := s.sharedNamespace()
		if target == "" {
			t.Errorf("service %s: network_mode %q, want service:NAME", name, s.NetworkMode)
			continue
		}
		owner, ok := c.Services[target]
		if !ok {
			t.Errorf("service %s: network_mode names service %q, which does not exist", name, target)
			continue
		}
		if owner.NetworkMode != "" {
			t.Errorf("service %s: joins %s, which itself joins %q", name, target, owner.NetworkMode)
		}
	}
}

// TestFixedAddresses checks that every container on the mesh network has a
// fixed address inside its subnet, and no two share one.
func TestFixedAddresses(t *testing.T) {
	c := loadCompose(t)
	subnet := meshSubnet(t, c)
	seen := map[netip.Addr]string{}
	for name, s := range c.Services {
		if s.NetworkMode != "" {
			continue // shares another service's address
		}
		addr, err := netip.ParseAddr(s.Networks[meshNetwork].IPv4Address)
		if err != nil {
			t.Errorf("service %s: no valid ipv4_address on network %s: %v", name, meshNetwork, err)
			continue
		}
		if !subnet.Contains(addr) {
			t.Errorf("service %s: address %s is outside %s", name, addr, subnet)
		}
		if other, ok := seen[addr]; ok {
			t.Errorf("services %s and %s both have address %s", name, other, addr)
		}
		seen[addr] = name
	}
}

// meshSubnet is the subnet of the mesh network.
func meshSubnet(t *testing.T, c compose) netip.Prefix {
	t.Helper()
	n, ok := c.Networks[meshNetwork]
	if !ok || len(n.IPAM.Config) != 1 {
		t.Fatalf("network %s: want one ipam subnet", meshNetwork)
	}
	subnet, err := netip.ParsePrefix(n.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("network %s: %v", meshNetwork, err)
	}
	return subnet
}
