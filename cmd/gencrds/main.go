// Command gencrds writes the CustomResourceDefinitions of the Istio kinds
// that minimesh reads, for clusters that do not run Istio:
//
//	go run ./cmd/gencrds > examples/kubernetes/crds.yaml
//
// The schemas are generated, not written by hand: gencrds walks the protobuf
// descriptors of the istio.io/api Go types that minimesh decodes into, so a
// field exists in the CRD exactly when the decoder knows it. Every schema is
// structural (the API server prunes unknown fields and checks types). A
// cluster with Istio's own CRDs installed needs none of this: minimesh reads
// the same objects through them.
//
// The output depends only on the istio.io/api version in go.mod, so the
// committed file can be compared with a fresh run (crds_test.go does).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/gencrds > examples/kubernetes/crds.yaml")
		os.Exit(2)
	}
	if err := writeCRDs(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gencrds:", err)
		os.Exit(1)
	}
}
