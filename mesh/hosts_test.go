package mesh

import "testing"

func TestResolveHost(t *testing.T) {
	tests := []struct{ host, namespace, suffix, want string }{
		{"my-app", "default", "cluster.local", "my-app.default.svc.cluster.local"},
		{"my-app", "shop", "", "my-app.shop.svc.cluster.local"},
		{"my-app", "shop", "mesh.internal", "my-app.shop.svc.mesh.internal"},
		{"my-app.shop", "default", "cluster.local", "my-app.shop"},
		{"my-app.default.svc.cluster.local", "other", "cluster.local", "my-app.default.svc.cluster.local"},
		{"api.example.com", "default", "cluster.local", "api.example.com"},
		{"*", "default", "cluster.local", "*"},
		{"*.example.com", "default", "cluster.local", "*.example.com"},
		{"", "default", "cluster.local", ""},
	}
	for _, tt := range tests {
		if got := ResolveHost(tt.host, tt.namespace, tt.suffix); got != tt.want {
			t.Errorf("ResolveHost(%q, %q, %q) = %q, want %q", tt.host, tt.namespace, tt.suffix, got, tt.want)
		}
	}
}

func TestHostMatches(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"*", "anything.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.example.org", false},
		{"a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", false},
	}
	for _, tt := range tests {
		if got := hostMatches(tt.pattern, tt.host); got != tt.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

func TestIsDNSName(t *testing.T) {
	for name, want := range map[string]bool{
		"db.example.com":   true,
		"my-app":           true,
		"My-App.Example":   true,
		"10.0.0.1":         false, // an IP address, not a name
		"10.0.0.300":       false,
		"-bad.example.com": false,
		"bad_name.com":     false,
		"example.com.":     false,
		"":                 false,
	} {
		if got := isDNSName(name); got != want {
			t.Errorf("isDNSName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestListNames(t *testing.T) {
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{nil, "none"},
		{[]string{"a", "b"}, "a, b"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "a, b, c, d, e and 2 more"},
	} {
		if got := listNames(tt.names); got != tt.want {
			t.Errorf("listNames(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	candidates := []string{"route", "redirect", "rewrite", "retries"}
	for word, want := range map[string]string{
		"rout":    "route",
		"Route":   "route",
		"retires": "retries",
		"mirror":  "",
	} {
		if got := closest(word, candidates); got != want {
			t.Errorf("closest(%q) = %q, want %q", word, got, want)
		}
	}
}
