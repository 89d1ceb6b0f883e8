package bootstrap

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// EnvoyYAML returns Envoy's bootstrap as a YAML file, ready for `envoy -c`.
// The same options always give the same bytes: keys are sorted and field
// names are the proto names Envoy's documentation uses. A comment at the top
// gives the command that writes the file.
func EnvoyYAML(o EnvoyOptions) ([]byte, error) {
	b, err := Envoy(o)
	if err != nil {
		return nil, err
	}
	// protojson's spacing varies from run to run on purpose; converting to
	// YAML keeps only the values, with map keys sorted.
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap for node %s: %w", o.NodeID, err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap for node %s: %w", o.NodeID, err)
	}
	return append([]byte(envoyHeader(o)), y...), nil
}

// envoyHeader is the comment at the top of a generated bootstrap file.
func envoyHeader(o EnvoyOptions) string {
	h := "# Envoy bootstrap for node " + o.NodeID + ", written by\n" +
		"#   minimesh bootstrap " + envoyFlags(o) + "\n" +
		"# Run that command again instead of editing this file.\n"
	if o.XDSTLS {
		h += "# xDS over mutual TLS with the certificate files in " + o.CertDir + "\n" +
			"# (from `minimesh certs issue --out`), through file-based SDS: re-running certs issue renews them in place.\n"
	} else {
		h += "# WARNING: xDS in plaintext (--insecure-xds): nothing authenticates this proxy\n" +
			"# to minimesh or minimesh to it. Use --certs DIR for mutual TLS.\n"
	}
	return h
}

// envoyFlags are the `minimesh bootstrap` flags that produce o.
func envoyFlags(o EnvoyOptions) string {
	flags := []string{"--node " + o.NodeID, "--xds " + o.XDSAddress}
	if !o.Delta {
		flags = append(flags, "--sotw")
	}
	if o.AdminAddress != "" && o.AdminAddress != DefaultAdminAddress {
		flags = append(flags, "--admin "+o.AdminAddress)
	}
	if o.XDSTLS {
		flags = append(flags, "--certs "+shellQuote(o.CertDir))
	} else {
		flags = append(flags, "--insecure-xds")
	}
	return strings.Join(flags, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters,
// digits and / . _ - :
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
