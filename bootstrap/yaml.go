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
	return "# Envoy bootstrap for node " + o.NodeID + ", written by\n" +
		"#   minimesh bootstrap " + envoyFlags(o) + "\n" +
		"# Run that command again instead of editing this file.\n"
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
	return strings.Join(flags, " ")
}
