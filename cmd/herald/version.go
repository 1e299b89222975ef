package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release version, set at link time by `make build-prod`
// and `make image` (-ldflags "-X main.version=..."). Left empty, the
// module version and VCS revision the Go toolchain stamps into the binary
// are reported instead.
var version string

// versionString describes this build in one line: version, commit and Go
// release, so that a running image can say what it is.
func versionString(info *debug.BuildInfo, ok bool) string {
	v, revision, modified := version, "", false
	if ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := "herald " + v
	if revision != "" {
		out += " commit " + revision
		if modified {
			out += " (modified)"
		}
	}
	return fmt.Sprintf("%s %s %s/%s", out, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print herald's version, commit and Go release",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString(debug.ReadBuildInfo()))
			return err
		},
	}
}
