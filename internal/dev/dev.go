// Package dev is `herald dev`: a complete local Herald on one machine,
// with no cluster and no containers. It starts etcd and kube-apiserver
// (controller-runtime's envtest, from the binaries `make envtest-bins`
// builds), installs the CRDs, runs the controllers and the inbox API server
// in this process, starts local sinks for every channel (Mailpit for email,
// a WAHA fake for WhatsApp, a logging webhook receiver), creates a demo
// namespace with Recipients and providers, and serves a small inbox web
// page.
//
// All state lives in one directory (default .herald-dev): etcd's data, the
// chosen ports, Mailpit's messages, logs and the admin kubeconfig. A second
// start with the same directory resumes with the same data and addresses.
//
// Everything under internal/dev is dev-only: this package, the fake sinks
// (providerfake), the Mailpit starter (mailpit), throw-away certificates
// (pki) and the test helpers (testutil/...). The production code paths,
// `herald controller` and `herald apiserver` (cmd/herald/internal/...),
// never import any of it; in the binary only cmd/herald/dev.go does, and a
// build with -tags nodev (make image, make build-prod) leaves it out.
// cmd/herald/imports_test.go checks all three.
package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

const loopback = "127.0.0.1"

// DefaultStateDir is where `herald dev` keeps its state unless told
// otherwise; .gitignore lists it.
const DefaultStateDir = ".herald-dev"

// DefaultNamespace is the demo namespace.
const DefaultNamespace = "demo"

// Options configure the development environment. The zero value (plus
// Controller from controllers.DefaultOptions) is a complete environment in
// .herald-dev.
type Options struct {
	// StateDir holds everything the environment keeps; default .herald-dev.
	StateDir string
	// Reset deletes the state directory first: a fresh etcd.
	Reset bool
	// Namespace is the demo namespace; default "demo".
	Namespace string
	// Ports asks for specific ports; zero fields keep the persisted port
	// (or a free one on first start).
	Ports Ports

	// RepoRoot is the Herald repository (for the CRDs, bin/ and
	// config/apiserver); found above the working directory or the
	// executable when empty.
	RepoRoot string
	// CRDDir defaults to RepoRoot/config/crd/bases.
	CRDDir string
	// BinDir holds etcd and kube-apiserver: $KUBEBUILDER_ASSETS, else
	// RepoRoot/bin/k8s.
	BinDir string
	// Mailpit is the Mailpit binary: $HERALD_MAILPIT, else
	// RepoRoot/bin/mailpit.
	Mailpit string
	// BuildMissing runs `make envtest-bins` when a binary is missing.
	BuildMissing bool

	// Controller configures the controllers (controllers.DefaultOptions
	// when zero).
	Controller controllers.Options
	// MetricsBindAddress serves the controllers' metrics; "" or "0" off.
	MetricsBindAddress string
	// DisableInbox skips the inbox API server (and the page's live view).
	DisableInbox bool
	// DisableDemo skips the demo namespace's Recipients and providers.
	DisableDemo bool

	// Out receives progress and the sinks' one-line reports (a terminal).
	Out io.Writer
	// Log receives the controllers' and the inbox server's logs.
	Log logr.Logger
}

// Env is a running development environment.
type Env struct {
	opts  Options
	state *state
	env   *envtest.Environment
	log   logr.Logger

	// StateDir is the absolute state directory.
	StateDir string
	// Resumed is true when the state directory already held etcd data.
	Resumed bool
	// Ports are the loopback ports in use.
	Ports Ports
	// Notes are things worth telling the user (moved ports, ended
	// orphans).
	Notes []string
	// Namespace is the demo namespace.
	Namespace string
	// Config is the admin's client configuration; Kubeconfig the file with
	// the same credentials (context namespace: the demo namespace).
	Config     *rest.Config
	Kubeconfig string
	// Client is an uncached admin client with Herald's and the inbox's
	// types.
	Client client.Client
	// WhatsApp is the WhatsApp sink (a WAHA fake).
	WhatsApp *providerfake.WAHA
	// Slack, Teams and Telegram are the chat sinks: the contract servers
	// of Slack's chat.postMessage, Teams Workflows webhooks and the
	// Telegram Bot API.
	Slack    *providerfake.Slack
	Teams    *providerfake.Teams
	Telegram *providerfake.Telegram
	// InboxErr is why the inbox API is not available, nil when it is.
	InboxErr error
	// StartupTime is how long Start took, Phases how long each part took.
	StartupTime time.Duration
	Phases      []Phase

	cached client.Client
	sinks  sinkLog

	mu       sync.Mutex
	stops    []func() error
	failed   chan error
	stopOnce sync.Once
	stopErr  error
}

// Phase is one step of Start and how long it took.
type Phase struct {
	Name     string
	Duration time.Duration
}

// phase records the time since the previous phase ended.
func (e *Env) phase(name string, since *time.Time) {
	now := time.Now()
	e.Phases = append(e.Phases, Phase{Name: name, Duration: now.Sub(*since)})
	e.log.Info("started", "part", name, "took", now.Sub(*since).String())
	*since = now
}

// Scheme has the Kubernetes types, Herald's CRDs and the inbox types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, notifyv1.AddToScheme, inboxv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// LoopbackEgress is the egress allowance of herald dev and of the test
// suites: their sinks listen on 127.0.0.1 (or ::1), and nothing else
// beyond the default policy is allowed.
func LoopbackEgress() []string { return []string{"127.0.0.0/8", "::1"} }

// Start brings the environment up and returns once everything answers:
// the controllers have synced, the demo objects exist, the inbox API
// answers through kube-apiserver and the page is served. On error,
// whatever started is stopped again. Stop ends it.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	started := time.Now()
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if opts.Controller.DefaultWorkers == 0 {
		opts.Controller = controllers.DefaultOptions()
		// The sinks listen on loopback, refused by default.
		opts.Controller.EgressAllow = LoopbackEgress()
	}

	e := &Env{opts: opts, log: opts.Log, Namespace: opts.Namespace, failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()

	mark := started
	if err := e.opts.resolvePaths(ctx, opts.Out); err != nil {
		return nil, err
	}
	st, resumed, err := openState(opts.StateDir, opts.Reset)
	if err != nil {
		return nil, err
	}
	e.state, e.StateDir, e.Resumed = st, st.dir, resumed
	e.onStop(func() error { st.unlock(); return nil })
	for _, o := range st.reapOrphans() {
		e.Notes = append(e.Notes, "ended "+o+" left behind by an earlier run")
	}
	var moved []string
	e.Ports, moved, err = st.ports(opts.Ports)
	if err != nil {
		return nil, err
	}
	e.Notes = append(e.Notes, moved...)

	what := "starting"
	if resumed {
		what = "resuming"
	}
	e.printf("herald dev: %s etcd and kube-apiserver (state in %s)\n", what, e.StateDir)
	e.phase("state directory", &mark)
	if err := e.startControlPlane(); err != nil {
		return nil, err
	}
	e.phase("etcd, kube-apiserver and CRDs", &mark)
	if err := ctx.Err(); err != nil { // Ctrl-C while they started
		return nil, err
	}
	e.Client, err = client.New(e.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}

	e.printf("herald dev: starting Mailpit, the WhatsApp, webhook, Slack, Teams and Telegram sinks, and the controllers\n")
	if err := e.startMailpit(ctx); err != nil {
		return nil, err
	}
	if err := e.startSinks(); err != nil {
		return nil, err
	}
	e.phase("Mailpit and sinks", &mark)
	if err := e.startControllers(ctx); err != nil {
		return nil, err
	}
	e.phase("controllers", &mark)
	if !opts.DisableDemo {
		if err := e.createDemo(ctx); err != nil {
			return nil, err
		}
		e.phase("demo namespace", &mark)
	}
	if opts.DisableInbox {
		e.InboxErr = errors.New("the inbox API server is disabled (--inbox=false)")
	} else {
		e.printf("herald dev: starting the inbox API server (inbox.herald.dev) behind kube-apiserver\n")
		stop, err := e.StartInboxServer(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, err
		}
		if err != nil {
			// Everything else works without it; say so and go on.
			e.InboxErr = err
			e.printf("herald dev: WARNING: the inbox API is not available: %v\n", err)
		} else {
			e.onStop(func() error { stop(); return nil })
		}
		e.phase("inbox API server", &mark)
	}
	if err := e.startWeb(); err != nil {
		return nil, err
	}
	e.StartupTime = time.Since(started)
	return e, nil
}

// startControllers runs Herald's controllers in this process, exactly as
// `herald controller` does (controllers.Setup), without leader election.
func (e *Env) startControllers(ctx context.Context) error {
	metrics := e.opts.MetricsBindAddress
	if metrics == "" {
		metrics = "0"
	}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 Scheme(),
		Cache:                  controllers.CacheOptions(),
		Logger:                 e.log.WithName("controller"),
		Metrics:                metricsserver.Options{BindAddress: metrics},
		HealthProbeBindAddress: "0",
		// A process may start more than one environment (tests).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	if _, err := controllers.Setup(mgr, e.opts.Controller); err != nil {
		return err
	}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	e.onStop(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("the controllers did not stop within 30s")
		}
	})
	go func() {
		select {
		case err := <-done:
			done <- err
			if mctx.Err() == nil {
				e.fail(fmt.Errorf("the controllers stopped: %v", err))
			}
		case <-mctx.Done():
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the controllers' caches did not sync")
	}
	e.cached = mgr.GetClient()
	return nil
}

// Failed delivers an error when a part of the environment stops on its
// own (the caller should then Stop).
func (e *Env) Failed() <-chan error { return e.failed }

func (e *Env) fail(err error) {
	select {
	case e.failed <- err:
	default:
	}
}

func (e *Env) onStop(f func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stops = append(e.stops, f)
}

// Stop stops everything in the reverse order of starting: the page, the
// inbox server, the controllers, the sinks, Mailpit, kube-apiserver and
// etcd; it returns when every child process has exited. The state
// directory stays for the next start.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		stops := e.stops
		e.stops = nil
		e.mu.Unlock()
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil {
				errs = append(errs, err)
			}
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

func (e *Env) printf(format string, args ...any) { fmt.Fprintf(e.opts.Out, format, args...) }

func hostPort(port int) string { return net.JoinHostPort(loopback, strconv.Itoa(port)) }

// APIServerURL is kube-apiserver's address.
func (e *Env) APIServerURL() string { return "https://" + hostPort(e.Ports.APIServer) }

// WebURL is the inbox page.
func (e *Env) WebURL() string { return "http://" + hostPort(e.Ports.Web) }

// MailpitURL is Mailpit's web UI and API.
func (e *Env) MailpitURL() string { return "http://" + hostPort(e.Ports.MailpitHTTP) }

// WebhookURL is where the webhook sink receives.
func (e *Env) WebhookURL() string { return "http://" + hostPort(e.Ports.Webhook) + "/hook" }

// WhatsAppURL is the WhatsApp sink's base URL (a WAHA API).
func (e *Env) WhatsAppURL() string { return "http://" + hostPort(e.Ports.WhatsApp) }

// SlackURL is the Slack sink's Web API base URL.
func (e *Env) SlackURL() string { return "http://" + hostPort(e.Ports.Slack) + "/api" }

// TeamsURL is the Teams sink's base URL; each room has a webhook under it.
func (e *Env) TeamsURL() string { return "http://" + hostPort(e.Ports.Teams) }

// TelegramURL is the Telegram sink's Bot API base URL.
func (e *Env) TelegramURL() string { return "http://" + hostPort(e.Ports.Telegram) }

// SinkMessages returns what the WhatsApp and webhook sinks received
// recently.
func (e *Env) SinkMessages() []SinkMessage { return e.sinks.Messages() }
