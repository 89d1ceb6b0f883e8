package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/minimesh/minimesh/bootstrap"
)

// bootstrapFlags are the flags of `minimesh bootstrap`.
type bootstrapFlags struct {
	node  string // NAME.NAMESPACE
	xds   string // host:port of minimesh's xDS server
	grpc  bool   // print the gRPC bootstrap instead of Envoy's
	sotw  bool   // Envoy uses state of the world instead of delta
	admin string // ip:port of Envoy's admin interface
}

// runBootstrap implements `minimesh bootstrap`: it prints the bootstrap a
// proxy needs to reach minimesh, Envoy YAML by default or gRPC JSON with
// --grpc.
func runBootstrap(args []string, stdout io.Writer) error {
	f, err := parseBootstrapFlags(args)
	if err != nil {
		return err
	}
	out, err := f.render()
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	_, err = stdout.Write(out)
	return err
}

// parseBootstrapFlags parses the command line and refuses combinations that
// cannot mean anything.
func parseBootstrapFlags(args []string) (bootstrapFlags, error) {
	var f bootstrapFlags
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: minimesh bootstrap --node NAME.NAMESPACE [--xds ADDR] [--grpc | --sotw] [--admin ADDR]")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.node, "node", "", "node ID of the proxy: `NAME.NAMESPACE` of its Pod or WorkloadEntry (required)")
	fs.StringVar(&f.xds, "xds", "127.0.0.1:15010", "`host:port` of minimesh's xDS server")
	fs.BoolVar(&f.grpc, "grpc", false, "print the gRPC xDS bootstrap (JSON, for GRPC_XDS_BOOTSTRAP) instead of Envoy's")
	fs.BoolVar(&f.sotw, "sotw", false, "make Envoy use state-of-the-world xDS instead of delta xDS")
	fs.StringVar(&f.admin, "admin", bootstrap.DefaultAdminAddress, "`ip:port` of Envoy's admin interface")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("bootstrap: unexpected argument %q", fs.Arg(0))
	}
	if f.node == "" {
		return f, errors.New("bootstrap: --node is required (NAME.NAMESPACE of the Pod or WorkloadEntry)")
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if f.grpc && (given["sotw"] || given["admin"]) {
		return f, errors.New("bootstrap: --sotw and --admin are Envoy settings; the gRPC bootstrap (--grpc) has neither")
	}
	return f, nil
}

// render returns the bootstrap file the flags ask for.
func (f bootstrapFlags) render() ([]byte, error) {
	if f.grpc {
		return bootstrap.GRPC(bootstrap.GRPCOptions{NodeID: f.node, XDSAddress: f.xds})
	}
	return bootstrap.EnvoyYAML(bootstrap.EnvoyOptions{
		NodeID:       f.node,
		XDSAddress:   f.xds,
		Delta:        !f.sotw,
		AdminAddress: f.admin,
	})
}
