package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/herald-dev/herald"

// The packages behind the production sub-commands. Everything they link is
// what a cluster runs.
var productionCommands = map[string]string{
	"herald controller": module + "/cmd/herald/internal/controller",
	"herald apiserver":  module + "/cmd/herald/internal/apiserver",
	"herald receiver":   module + "/cmd/herald/internal/receiver",
}

// listedPackage is the part of `go list -json` this test reads.
type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

// goList runs `go list -deps` on pkgs with the build tags and returns every
// package in the result by import path.
func goList(t *testing.T, tags string, pkgs ...string) map[string]*listedPackage {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		goCmd, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
	}
	if err != nil {
		t.Fatalf("this test needs the go command: %v", err)
	}
	args := []string{"list", "-deps", "-json=ImportPath,Standard,Imports"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(goCmd, append(args, pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, stderr.String())
	}
	all := map[string]*listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		all[p.ImportPath] = &p
	}
	for _, p := range pkgs {
		if all[p] == nil {
			t.Fatalf("go list did not report %s", p)
		}
	}
	return all
}

// under reports whether path is pkg or a package below it.
func under(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }

// devOnly says why a package must not be linked into a production code
// path, or returns "" when it may be.
//
// The *test and *fake naming rule applies to Herald's own packages and to
// the standard library's testing support: third-party modules have
// packages such as k8s.io/client-go/kubernetes/fake that k8s.io/apiserver
// itself links, which Herald cannot change.
func devOnly(p *listedPackage) string {
	path := p.ImportPath
	last := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case under(path, module+"/internal/dev"):
		return "dev-only (internal/dev)"
	case under(path, module+"/internal/testutil"):
		return "a test helper (internal/testutil)"
	case under(path, module) && (strings.HasSuffix(last, "test") || strings.HasSuffix(last, "fake") || strings.HasPrefix(last, "testutil")):
		return "a test or fake package"
	case p.Standard && (under(path, "testing") || path == "net/http/httptest"):
		return "the standard library's test support"
	case under(path, "github.com/onsi"):
		return "a test framework (Ginkgo, Gomega)"
	case under(path, "sigs.k8s.io/controller-runtime/pkg/envtest"):
		return "a test control plane (envtest)"
	}
	return ""
}

// devOnlyChains returns, for every dev-only package that root reaches in
// graph, the shortest import chain from root to it.
func devOnlyChains(graph map[string]*listedPackage, root string) []string {
	from := map[string]string{root: ""}
	queue := []string{root}
	var chains []string
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		p := graph[path]
		if p == nil {
			continue
		}
		if why := devOnly(p); why != "" {
			chain := []string{path}
			for at := from[path]; at != ""; at = from[at] {
				chain = append(chain, at)
			}
			slices.Reverse(chain)
			chains = append(chains, fmt.Sprintf("%s is %s:\n\t%s", path, why, strings.Join(chain, "\n\t  imports ")))
			// What a dev-only package imports in turn is reported through
			// it; one chain per entry point is enough to act on.
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := from[imp]; !seen {
				from[imp] = path
				queue = append(queue, imp)
			}
		}
	}
	slices.Sort(chains)
	return chains
}

// TestProductionImports checks that `herald controller` and
// `herald apiserver` never link dev-only code: nothing under internal/dev
// (herald dev, the fake sinks, the test PKI, the test helpers), no test or
// fake package of Herald's, no test framework and no envtest. It checks the
// packages behind the two sub-commands, and the whole binary as the
// image is built (-tags nodev).
func TestProductionImports(t *testing.T) {
	for name, pkg := range productionCommands {
		t.Run(name, func(t *testing.T) {
			for _, c := range devOnlyChains(goList(t, "", pkg), pkg) {
				t.Errorf("%s links dev-only code: %s", name, c)
			}
		})
	}
	t.Run("herald built with -tags nodev", func(t *testing.T) {
		pkg := module + "/cmd/herald"
		for _, c := range devOnlyChains(goList(t, "nodev", pkg), pkg) {
			t.Errorf("the production binary (go build -tags nodev ./cmd/herald) links dev-only code: %s", c)
		}
	})
}

// TestDevImportedOnlyByDevGo checks that in the development build the one
// way into internal/dev is dev.go, the file of herald dev: every other file
// of the binary's main package, and every package the binary links outside
// internal/dev, keeps away from it.
func TestDevImportedOnlyByDevGo(t *testing.T) {
	pkg := module + "/cmd/herald"
	graph := goList(t, "", pkg)
	for path, p := range graph {
		if path == pkg || devOnly(p) != "" {
			continue
		}
		for _, imp := range p.Imports {
			if under(imp, module+"/internal/dev") {
				t.Errorf("%s imports %s; only cmd/herald/dev.go may", path, imp)
			}
		}
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var importers []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); under(path, module+"/internal/dev") {
				importers = append(importers, file)
			}
		}
	}
	if !slices.Equal(importers, []string{"dev.go"}) {
		t.Errorf("files of cmd/herald that import internal/dev: %v; want only dev.go (built without -tags nodev)", importers)
	}
}

// TestDevOnlyChains checks the checker on a made-up graph, so that the
// tests above cannot pass by finding nothing.
func TestDevOnlyChains(t *testing.T) {
	graph := map[string]*listedPackage{}
	add := func(path string, std bool, imports ...string) {
		graph[path] = &listedPackage{ImportPath: path, Standard: std, Imports: imports}
	}
	add("cmd", false, module+"/controllers", "fmt")
	add("fmt", true)
	add(module+"/controllers", false, module+"/internal/channel", "k8s.io/client-go/kubernetes/fake", "k8s.io/client-go/tools/clientcmd/api/latest")
	add(module+"/internal/channel", false, module+"/internal/dev/providerfake", "net/http/httptest", "github.com/onsi/gomega")
	add(module+"/internal/dev/providerfake", false, "net/http/httptest")
	add("net/http/httptest", true)
	add("github.com/onsi/gomega", false)
	add("k8s.io/client-go/kubernetes/fake", false)
	add("k8s.io/client-go/tools/clientcmd/api/latest", false)

	got := devOnlyChains(graph, "cmd")
	want := []string{
		module + "/internal/dev/providerfake is dev-only (internal/dev):\n\tcmd\n\t  imports " + module + "/controllers\n\t  imports " + module + "/internal/channel\n\t  imports " + module + "/internal/dev/providerfake",
		"github.com/onsi/gomega is a test framework (Ginkgo, Gomega):\n\tcmd\n\t  imports " + module + "/controllers\n\t  imports " + module + "/internal/channel\n\t  imports github.com/onsi/gomega",
		"net/http/httptest is the standard library's test support:\n\tcmd\n\t  imports " + module + "/controllers\n\t  imports " + module + "/internal/channel\n\t  imports net/http/httptest",
	}
	if !slices.Equal(got, want) {
		t.Errorf("chains:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestImageBuildsWithoutDev checks that the image is built the way
// TestProductionImports checks the binary: the Containerfile only copies a
// binary (FROM scratch, nothing pulled from a registry), and the Makefile
// builds that binary static and with -tags nodev.
func TestImageBuildsWithoutDev(t *testing.T) {
	containerfile, err := os.ReadFile(filepath.Join("..", "..", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	for _, line := range strings.Split(string(containerfile), "\n") {
		if f, ok := strings.CutPrefix(strings.TrimSpace(line), "FROM "); ok {
			froms = append(froms, strings.TrimSpace(f))
		}
	}
	if !slices.Equal(froms, []string{"scratch"}) {
		t.Errorf("the Containerfile's FROM lines are %q; want only scratch, so that nothing is pulled from a registry", froms)
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(makefile), "\n") {
		if strings.HasPrefix(line, "PROD_BUILD =") {
			for _, want := range []string{"CGO_ENABLED=0", "-tags nodev"} {
				if !strings.Contains(line, want) {
					t.Errorf("the Makefile's production build (image and build-prod) lacks %s:\n%s", want, line)
				}
			}
			return
		}
	}
	t.Error("the Makefile has no `PROD_BUILD = ...` line")
}
