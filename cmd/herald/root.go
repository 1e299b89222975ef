package main

import (
	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/cmd/herald/internal/apiserver"
	"github.com/herald-dev/herald/cmd/herald/internal/controller"
	"github.com/herald-dev/herald/cmd/herald/internal/receiver"
)

// newRootCommand is the herald command with its production sub-commands,
// controller, apiserver and receiver, which live in packages of their own that import
// nothing dev-only. The dev sub-command is added by dev.go, the only file of
// the binary that imports internal/dev, and is left out of builds with
// -tags nodev (nodev.go).
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "Herald delivers notifications from Kubernetes custom resources",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(controller.NewCommand())
	root.AddCommand(apiserver.NewCommand())
	root.AddCommand(receiver.NewCommand())
	root.AddCommand(newDevCommand())
	root.AddCommand(newVersionCommand())
	return root
}
