package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "Herald delivers notifications from Kubernetes custom resources",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newControllerCommand())
	root.AddCommand(newAPIServerCommand())
	root.AddCommand(newDevCommand())
	return root
}
