//go:build nodev

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDevCommand stands in for `herald dev` in a production build
// (-tags nodev, as `make build-prod` and `make image` build it): the
// binary links nothing from internal/dev, so it can only say where to get
// the real command.
func newDevCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "dev",
		Short:              "Not in this build: herald dev is left out of production builds (-tags nodev)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("herald dev is not part of this binary, which was built with -tags nodev for production; build a development binary with `make build` (go build ./cmd/herald)")
		},
	}
}
