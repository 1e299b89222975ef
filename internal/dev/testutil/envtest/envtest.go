// Package envtest starts a real kube-apiserver and etcd for tests, from the
// binaries that `make envtest-bins` builds into bin/k8s, with Herald's CRDs
// installed. Nothing is downloaded.
package envtest

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	notifyv1alpha1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// RepoRoot returns the directory holding Herald's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isHeraldModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Herald go.mod above the working directory")
		}
		dir = parent
	}
}

func isHeraldModule(gomod []byte) bool {
	const first = "module github.com/herald-dev/herald\n"
	return len(gomod) >= len(first) && string(gomod[:len(first)]) == first
}

// BinaryDir returns where kube-apiserver and etcd are: $KUBEBUILDER_ASSETS
// when set, else bin/k8s in the repository. It fails with the command that
// builds them when they are missing.
func BinaryDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "k8s")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run 'make envtest-bins' first", name, dir)
		}
	}
	return dir, nil
}

// Scheme returns a scheme with the core Kubernetes types and Herald's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := notifyv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// New returns an Environment with Herald's CRDs that uses the locally built
// binaries. Callers may configure the API server further before Start.
func New() (*envtest.Environment, error) {
	bins, err := BinaryDir()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: bins,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}, nil
}
