//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// profileChunk is the length of one CPU profile. A run's length is not known
// in advance, so a run is covered by consecutive chunks; `go tool pprof`
// merges them when given several files.
const profileChunk = 5 * time.Second

// profiler records CPU profiles of kube-apiserver and of the controller
// process while a run is measured, when HERALD_BENCH_PROFILE names a
// directory. It is how the figures in docs/performance.md were explained.
type profiler struct {
	dir        string
	apiserver  *http.Client
	apiHost    string
	controller string // host:port of the controller's pprof endpoint
}

// newProfiler returns nil when profiling is off.
func newProfiler(cfg *rest.Config) (*profiler, error) {
	dir := os.Getenv("HERALD_BENCH_PROFILE")
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server client for profiles: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	return &profiler{dir: dir, apiserver: hc, apiHost: strings.TrimSuffix(cfg.Host, "/"), controller: addr}, nil
}

// controllerFlags are the flags that let the controller be profiled.
func (p *profiler) controllerFlags() []string {
	if p == nil {
		return nil
	}
	return []string{"--pprof-bind-address=" + p.controller}
}

// start profiles both processes until the returned function is called.
func (p *profiler) start(run string) (stop func()) {
	if p == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for component, base := range map[string]string{
		"apiserver":  p.apiHost,
		"controller": "http://" + p.controller,
	} {
		client := http.DefaultClient
		if component == "apiserver" {
			client = p.apiserver
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				name := filepath.Join(p.dir, fmt.Sprintf("%s-%s-%03d.pb.gz", run, component, k))
				if err := fetchProfile(client, base, name); err != nil {
					fmt.Fprintf(os.Stderr, "profile %s: %v\n", name, err)
					return
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

func fetchProfile(c *http.Client, base, file string) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(profileChunk/time.Second))
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
