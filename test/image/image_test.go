// Package image checks the container image `make image` builds: it runs as
// uid 65532, its entrypoint is the herald binary, it holds nothing but that
// binary (no shell), it stays small, and, where the kernel lets the
// container engine run containers, `herald version` runs in it.
//
// Run it with `make test-image`, which builds the image first and passes
// its name in HERALD_IMAGE and the engine (podman or docker) in
// HERALD_CONTAINER_TOOL. Without HERALD_IMAGE the test is skipped: `go test
// ./...` does not build images.
package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// maxImageBytes bounds the image. It is the binary alone (about 76 MB,
// most of it k8s.io/apiserver and client-go); a base layer or a debug
// build would break the bound.
const maxImageBytes = 90 << 20

func engine(t *testing.T) (tool, image string) {
	t.Helper()
	image = os.Getenv("HERALD_IMAGE")
	if image == "" {
		t.Skip("HERALD_IMAGE is not set: run `make test-image`, which builds the image")
	}
	tool = os.Getenv("HERALD_CONTAINER_TOOL")
	if tool == "" {
		tool = "podman"
	}
	return tool, image
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// inspected is the part of `podman/docker image inspect` this test reads;
// both engines report these fields under the same names.
type inspected struct {
	Size   int64
	Config struct {
		User       string
		Entrypoint []string
		Cmd        []string
	}
}

func TestImageConfig(t *testing.T) {
	tool, image := engine(t)
	var got []inspected
	if err := json.Unmarshal(run(t, tool, "image", "inspect", image), &got); err != nil || len(got) != 1 {
		t.Fatalf("image inspect %s: %v (%d images)", image, err, len(got))
	}
	img := got[0]
	if img.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532 (non-root, as the manifests' runAsUser)", img.Config.User)
	}
	if strings.Join(img.Config.Entrypoint, " ") != "/herald" {
		t.Errorf("entrypoint = %q, want [/herald]", img.Config.Entrypoint)
	}
	if img.Size <= 0 || img.Size > maxImageBytes {
		t.Errorf("image size = %d bytes, want at most %d", img.Size, maxImageBytes)
	}
	t.Logf("image %s: %.1f MB", image, float64(img.Size)/1e6)
}

// TestImageHoldsOnlyTheBinary exports the image's filesystem and checks
// that /herald is the only file in it: no shell, no package manager, no
// libc, nothing from a base image.
func TestImageHoldsOnlyTheBinary(t *testing.T) {
	tool, image := engine(t)
	id := strings.TrimSpace(string(run(t, tool, "create", image, "version")))
	defer run(t, tool, "rm", id)
	exported := run(t, tool, "export", id)

	var files []string
	tr := tar.NewReader(bytes.NewReader(exported))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		// The engines create these mount points and files in every
		// container; they are empty.
		switch strings.TrimSuffix(name, "/") {
		case "", "dev", "proc", "sys", "etc", "etc/hosts", "etc/resolv.conf", "etc/hostname", "run", "run/.containerenv", ".dockerenv", "dev/console", "dev/pts", "dev/shm":
			if h.Typeflag == tar.TypeReg && h.Size > 0 && name != "etc/hosts" && name != "etc/resolv.conf" && name != "etc/hostname" {
				t.Errorf("%s in the image has %d bytes", name, h.Size)
			}
			continue
		}
		files = append(files, name)
		if name == "herald" && h.Mode&0o111 == 0 {
			t.Errorf("/herald is not executable: mode %o", h.Mode)
		}
	}
	if strings.Join(files, " ") != "herald" {
		t.Errorf("files in the image: %v; want only herald", files)
	}
}

// TestImageRunsVersion runs `herald version` in the image. On this
// project's machines the kernel withholds CAP_SYS_RESOURCE and the cgroup
// hierarchy is hybrid: crun refuses hybrid cgroups, so runc is used when
// installed, and the rlimits are lowered (raising them needs
// CAP_SYS_RESOURCE). No network: the binary must start without one.
func TestImageRunsVersion(t *testing.T) {
	tool, image := engine(t)
	var args []string
	if tool == "podman" {
		if _, err := exec.LookPath("runc"); err == nil {
			args = append(args, "--runtime", "runc")
		}
	}
	args = append(args, "run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image, "version")
	out := strings.TrimSpace(string(run(t, tool, args...)))
	if !strings.HasPrefix(out, "herald ") || !strings.Contains(out, "linux/") {
		t.Errorf("herald version printed %q", out)
	}
	t.Log(out)
}
