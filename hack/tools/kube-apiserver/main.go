// Command kube-apiserver is the upstream kube-apiserver, built from the Go
// module proxy so that envtest suites need nothing downloaded from elsewhere.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
