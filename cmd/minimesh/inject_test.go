//go:build kubernetes

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRunInject: the command writes what the inject package's golden file
// holds, to stdout or to -o, from a file or from stdin.
func TestRunInject(t *testing.T) {
	in := filepath.Join("..", "..", "inject", "testdata", "in", "deployment.yaml")
	want, err := os.ReadFile(filepath.Join("..", "..", "inject", "testdata", "out", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("file to stdout", func(t *testing.T) {
		var out bytes.Buffer
		if err := runInject([]string{"-f", in}, nil, &out); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), out.String()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("stdin to -o", func(t *testing.T) {
		input, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "injected.yaml")
		var out bytes.Buffer
		if err := runInject([]string{"-f", "-", "-o", dest}, bytes.NewReader(input), &out); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if out.Len() != 0 {
			t.Errorf("stdout = %q, want nothing with -o", out.String())
		}
	})
	t.Run("images and addresses", func(t *testing.T) {
		var out bytes.Buffer
		err := runInject([]string{"-f", in, "--image", "registry.local/minimesh:dev", "--proxy-image", "registry.local/envoy:dev",
			"--xds", "xds.mesh.svc:15012", "--token-exchange-url", "https://xds.mesh.svc:15014/token"}, nil, &out)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"image: registry.local/minimesh:dev", "image: registry.local/envoy:dev",
			"target_uri: xds.mesh.svc:15012", "token_exchange_service_uri: https://xds.mesh.svc:15014/token"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("output lacks %q", s)
			}
		}
	})
}

func TestRunInjectErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no -f":        {nil, "-f FILE is required"},
		"missing file": {[]string{"-f", "/nonexistent/deploy.yaml"}, "no such file"},
		"IP xDS":       {[]string{"-f", filepath.Join("..", "..", "inject", "testdata", "in", "pod.yaml"), "--xds", "10.0.0.1:15010"}, "DNS name"},
		"extra":        {[]string{"-f", "a.yaml", "b.yaml"}, `unexpected argument "b.yaml"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := runInject(tc.args, nil, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
