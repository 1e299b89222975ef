package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main:     debug.Module{Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}},
	}
	goSuffix := " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name, linked string
		info         *debug.BuildInfo
		ok           bool
		want         string
	}{
		{"from build info", "", stamped, true, "herald v0.3.0 commit abc123 (modified)"},
		{"linked version wins", "v1.0.0", stamped, true, "herald v1.0.0 commit abc123 (modified)"},
		{"no build info", "", nil, false, "herald (devel)"},
		{"clean tree", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, true, "herald v0.3.0 commit abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := version
			version = tc.linked
			defer func() { version = old }()
			got := versionString(tc.info, tc.ok)
			if got != tc.want+goSuffix {
				t.Errorf("got %q, want %q", got, tc.want+goSuffix)
			}
			if strings.Contains(got, "  ") {
				t.Errorf("double space in %q", got)
			}
		})
	}
}
