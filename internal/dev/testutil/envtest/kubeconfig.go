package envtest

import (
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AdminKubeconfig adds a user named name in system:masters to env's
// control plane and writes its kubeconfig to dir/<name>.kubeconfig, for a
// process that talks to the control plane as one of Herald's components
// (the controller, the inbox server). It returns the file and the user's
// client configuration.
func AdminKubeconfig(env *envtest.Environment, name, dir string) (string, *rest.Config, error) {
	user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", nil, err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return "", nil, err
	}
	return file, user.Config(), nil
}
