package interop

import (
	"testing"

	"github.com/minimesh/minimesh/internal/testbed"
)

// startCanary starts minimesh serving examples/canary with backends v1 and v2 (90/10).
func startCanary(t testing.TB) canary { return testbed.StartCanary(t) }
