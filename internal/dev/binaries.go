package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repoRoot returns the directory of Herald's go.mod above dir, or "".
func repoRoot(dir string) string {
	for dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/herald-dev/herald\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	return ""
}

// findRepoRoot looks above the working directory, then above the
// executable (bin/herald lives in the repository).
func findRepoRoot() string {
	if wd, err := os.Getwd(); err == nil {
		if r := repoRoot(wd); r != "" {
			return r
		}
	}
	if exe, err := os.Executable(); err == nil {
		if r := repoRoot(filepath.Dir(exe)); r != "" {
			return r
		}
	}
	return ""
}

// resolvePaths fills in the binary and CRD paths from the environment and
// the repository, building missing binaries with `make envtest-bins` when
// allowed.
func (o *Options) resolvePaths(ctx context.Context, out io.Writer) error {
	if o.RepoRoot == "" {
		o.RepoRoot = findRepoRoot()
	}
	if o.CRDDir == "" {
		if o.RepoRoot == "" {
			return errors.New("cannot find Herald's CRDs: run herald dev inside the Herald repository or pass --crd-dir (config/crd/bases)")
		}
		o.CRDDir = filepath.Join(o.RepoRoot, "config", "crd", "bases")
	}
	if _, err := os.Stat(o.CRDDir); err != nil {
		return fmt.Errorf("CRD directory: %w", err)
	}
	if o.BinDir == "" {
		o.BinDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.BinDir == "" && o.RepoRoot != "" {
		o.BinDir = filepath.Join(o.RepoRoot, "bin", "k8s")
	}
	if o.Mailpit == "" {
		o.Mailpit = os.Getenv("HERALD_MAILPIT")
	}
	if o.Mailpit == "" && o.RepoRoot != "" {
		o.Mailpit = filepath.Join(o.RepoRoot, "bin", "mailpit")
	}
	missing := o.missingBinaries()
	if len(missing) == 0 {
		return nil
	}
	build := "make envtest-bins"
	if o.RepoRoot != "" {
		build = fmt.Sprintf("make -C %s envtest-bins", o.RepoRoot)
	}
	if !o.BuildMissing || o.RepoRoot == "" {
		return fmt.Errorf("missing %s: build them with `%s` (kube-apiserver takes several minutes the first time), or point --bin-dir and --mailpit at existing binaries", strings.Join(missing, ", "), build)
	}
	if _, err := exec.LookPath("make"); err != nil {
		return fmt.Errorf("missing %s and no make to build them: install make and run `%s`", strings.Join(missing, ", "), build)
	}
	fmt.Fprintf(out, "herald dev: %s not built yet; running `%s` (kube-apiserver takes about 4 minutes on 2 cores the first time, later starts reuse it)\n", strings.Join(missing, ", "), build)
	// make stays in the terminal's process group: Ctrl-C stops the build.
	cmd := exec.CommandContext(ctx, "make", "-C", o.RepoRoot, "envtest-bins")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("`%s` failed: %w", build, err)
	}
	if missing := o.missingBinaries(); len(missing) > 0 {
		return fmt.Errorf("still missing after `%s`: %s", build, strings.Join(missing, ", "))
	}
	return nil
}

func (o *Options) missingBinaries() []string {
	var missing []string
	for _, p := range []string{filepath.Join(o.BinDir, "etcd"), filepath.Join(o.BinDir, "kube-apiserver"), o.Mailpit} {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, p)
		}
	}
	return missing
}
