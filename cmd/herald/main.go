// Command herald is Herald's single binary: the controller manager
// (herald controller, package internal/controller), the inbox aggregated
// API server (herald apiserver, package internal/apiserver), the endpoint
// for providers' delivery receipts (herald receiver, package
// internal/receiver), and a local
// development environment (herald dev, dev.go and internal/dev).
//
// Built with -tags nodev (make build-prod, make image) the binary
// leaves herald dev out and links nothing from internal/dev; imports_test.go
// checks that, and that the controller and apiserver packages never import
// dev-only code.
package main

import (
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	if err := newRootCommand().ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		os.Exit(1)
	}
}
