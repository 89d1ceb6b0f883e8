// Package examples ships the example scenarios inside the minimesh binary,
// so that the demo (cmd/minimesh-demo) runs anywhere without the repository.
package examples

import "embed"

// Canary is the canary scenario: the blog's DestinationRule and
// VirtualService (90/10), and the ServiceEntry and WorkloadEntries that say
// where my-app runs.
//
//go:embed canary/*.yaml
var Canary embed.FS
