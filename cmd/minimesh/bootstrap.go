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
	certs string // directory of the workload's certificate files, as the proxy sees it
	// insecureXDS asks for plaintext xDS; without it, --certs is required.
	insecureXDS bool
}

// runBootstrap implements `minimesh bootstrap`: it prints the bootstrap a
// proxy needs to reach minimesh, Envoy YAML by default or gRPC JSON with
// --grpc.
//
// xDS over mutual TLS is the default: it needs --certs, the directory where
// `minimesh certs issue --out` wrote the workload's certificate. Plaintext
// xDS must be asked for with --insecure-xds; nothing else gives it. For
// gRPC, --certs also defines the certificate provider that mTLS between
// workloads uses, so --certs with --insecure-xds makes sense there; Envoy
// gets those certificates over SDS, so for Envoy the two flags exclude each
// other.
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
		fmt.Fprintln(fs.Output(), "usage: minimesh bootstrap --node NAME.NAMESPACE [--xds ADDR] (--certs DIR | --insecure-xds) [--grpc | --sotw] [--admin ADDR]")
		fmt.Fprintln(fs.Output(), "       minimesh bootstrap --grpc --node NAME.NAMESPACE [--xds ADDR] --certs DIR --insecure-xds")
		fmt.Fprintln(fs.Output(), "xDS runs over mutual TLS with the certificate in --certs; plaintext only with --insecure-xds.")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.node, "node", "", "node ID of the proxy: `NAME.NAMESPACE` of its Pod or WorkloadEntry (required)")
	fs.StringVar(&f.xds, "xds", "127.0.0.1:15010", "`host:port` of minimesh's xDS server")
	fs.BoolVar(&f.grpc, "grpc", false, "print the gRPC xDS bootstrap (JSON, for GRPC_XDS_BOOTSTRAP) instead of Envoy's")
	fs.BoolVar(&f.sotw, "sotw", false, "make Envoy use state-of-the-world xDS instead of delta xDS")
	fs.StringVar(&f.admin, "admin", bootstrap.DefaultAdminAddress, "`ip:port` of Envoy's admin interface")
	fs.StringVar(&f.certs, "certs", "", "`DIR` where `minimesh certs issue --out` wrote this workload's key, chain and roots, "+
		"as the proxy sees it (an absolute path is safest): the proxy reaches minimesh over mutual TLS with them, "+
		"checking that minimesh's certificate names the host of --xds. With --grpc it also sets up gRPC's "+
		"file_watcher certificate provider for mTLS between workloads (without it gRPC refuses the TLS settings minimesh sends)")
	fs.BoolVar(&f.insecureXDS, "insecure-xds", false, "reach minimesh over plaintext xDS, authenticating neither side "+
		"(minimesh must run with --insecure-xds too). Required when --certs is not given. For Envoy it excludes --certs; "+
		"with --grpc --certs DIR it keeps xDS plaintext while gRPC still gets its certificate provider")
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
	if given["certs"] && f.certs == "" {
		return f, errors.New("bootstrap: --certs needs a directory")
	}
	switch {
	case f.certs == "" && !f.insecureXDS:
		return f, errors.New("bootstrap: xDS runs over mutual TLS: pass --certs DIR (written by `minimesh certs issue --out DIR`), " +
			"or --insecure-xds for plaintext xDS that authenticates nobody")
	case f.certs != "" && f.insecureXDS && !f.grpc:
		return f, errors.New("bootstrap: --certs is used only for xDS over TLS, which --insecure-xds turns off " +
			"(Envoy gets its certificates for mTLS between workloads over SDS); pass one of them")
	}
	return f, nil
}

// render returns the bootstrap file the flags ask for.
func (f bootstrapFlags) render() ([]byte, error) {
	if f.grpc {
		return bootstrap.GRPC(bootstrap.GRPCOptions{
			NodeID:     f.node,
			XDSAddress: f.xds,
			CertDir:    f.certs,
			XDSTLS:     !f.insecureXDS,
		})
	}
	return bootstrap.EnvoyYAML(bootstrap.EnvoyOptions{
		NodeID:       f.node,
		XDSAddress:   f.xds,
		Delta:        !f.sotw,
		AdminAddress: f.admin,
		CertDir:      f.certs,
		XDSTLS:       !f.insecureXDS,
	})
}
