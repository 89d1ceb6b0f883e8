//go:build !kubernetes && !lean

package main

// kubernetesBuildHint says how to get Kubernetes mode from this build.
const kubernetesBuildHint = "build it with `go build -tags kubernetes ./cmd/minimesh`, as the container image is; " +
	"this one serves files (--config-dir)"
