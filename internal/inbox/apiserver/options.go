// Package apiserver assembles Herald's inbox aggregated API server
// (inbox.herald.dev/v1alpha1) the way Kubernetes API servers are built:
// Options (flags) make a Config, Complete fills in its defaults, New
// builds the Server (the hub, the inboxitems storage and the SSE stream on
// a generic API server), and Run serves. Identity comes from
// kube-apiserver's front proxy (request headers over its client
// certificate), authorization is delegated to kube-apiserver with
// SubjectAccessReviews.
package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/sets"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/herald-dev/herald/internal/apflimit"
	inboxopenapi "github.com/herald-dev/herald/internal/inbox/openapi"
	"github.com/herald-dev/herald/internal/inbox/stream"
)

// Options configure the inbox API server. The serving, authentication and
// authorization options are the generic API server's own, so the flags are
// the ones every aggregated API server has.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions

	// Kubeconfig is used to watch and update ChannelDeliveries; empty means
	// the in-cluster service account.
	Kubeconfig string
	// Namespace limits the inbox to one namespace's deliveries; empty
	// serves all namespaces.
	Namespace string
	// Heartbeat is the interval of SSE heartbeat comments.
	Heartbeat time.Duration
	// History is how many events the server keeps for resuming streams and
	// watches.
	History int
	// QPS and Burst of the client for ChannelDeliveries and Recipients;
	// with AdaptiveQPS, QPS is the ceiling of one process-wide rate that
	// follows kube-apiserver's 429 answers (internal/apflimit).
	QPS         float32
	Burst       int
	AdaptiveQPS bool

	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *restclient.Config
	// Logger receives the inbox's own logs; the generic server logs to klog.
	Logger logr.Logger
}

// NewOptions returns the defaults: port 8443, a self-signed certificate in
// memory unless --tls-cert-file or --cert-dir say otherwise, front-proxy
// settings read from kube-system/extension-apiserver-authentication.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
		Heartbeat:      stream.DefaultHeartbeat,
		History:        10000,
		QPS:            50,
		Burst:          100,
		AdaptiveQPS:    true,
		Logger:         klog.Background().WithName("inbox"),
	}
	o.SecureServing.BindPort = 8443
	o.SecureServing.ServerCert.PairName = "herald-inbox"
	// Without --tls-cert-file or --cert-dir the certificate is generated in
	// memory; nothing is written next to the binary.
	o.SecureServing.ServerCert.CertDirectory = ""
	return o
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.SecureServing.AddFlags(fs)
	o.Authentication.AddFlags(fs)
	o.Authorization.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig used to watch and update ChannelDeliveries (default: in-cluster).")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Serve only this namespace's deliveries (default: all namespaces).")
	fs.DurationVar(&o.Heartbeat, "stream-heartbeat-interval", o.Heartbeat, "Interval of heartbeat comments on idle SSE streams.")
	fs.IntVar(&o.History, "event-history", o.History, "Events kept for resuming SSE streams and watches; an older cursor gets a reset.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Queries per second to the Kubernetes API: the ceiling with --kube-api-adaptive, else per resource type; -1 for no client-side limit.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of --kube-api-qps.")
	fs.BoolVar(&o.AdaptiveQPS, "kube-api-adaptive", o.AdaptiveQPS, "Share one client rate limit of at most --kube-api-qps across the process, halve it when the API server answers 429 Too Many Requests and raise it back while requests go through.")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	if o.History < 1 {
		errs = append(errs, fmt.Errorf("--event-history must be at least 1"))
	}
	if o.Heartbeat <= 0 {
		errs = append(errs, fmt.Errorf("--stream-heartbeat-interval must be positive"))
	}
	return errors.Join(errs...)
}

// Config makes the server's configuration from the options: the generic
// API server's (serving, delegated authentication and authorization,
// OpenAPI, long-running requests), the connection to kube-apiserver for
// ChannelDeliveries, and the hub's and stream's settings.
func (o *Options) Config() (*Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("creating a self-signed serving certificate: %w", err)
	}
	kube, err := o.restConfig()
	if err != nil {
		return nil, err
	}

	cfg := genericapiserver.NewConfig(Codecs)
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	namer := openapinamer.NewDefinitionNamer(Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(inboxopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "Herald inbox"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(inboxopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "Herald inbox"
	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, err
	}
	if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	cfg.Authentication.Authenticator = refuseAnonymous(cfg.Authentication.Authenticator)
	if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	cfg.EnableProfiling = false

	// The stream is long-running: without this the generic server would
	// cut it at its request timeout (60s).
	basic := genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch"), sets.NewString())
	cfg.LongRunningFunc = func(r *http.Request, ri *genericapirequest.RequestInfo) bool {
		return stream.IsRequest(ri) || basic(r, ri)
	}
	return &Config{
		Generic:   cfg,
		Kube:      kube,
		Namespace: o.Namespace,
		Heartbeat: o.Heartbeat,
		History:   o.History,
		Logger:    o.Logger,
	}, nil
}

// NewServer is Config, Complete and New in one step.
func (o *Options) NewServer() (*Server, error) {
	c, err := o.Config()
	if err != nil {
		return nil, err
	}
	return c.Complete().New()
}

// ClientConfig is the connection to kube-apiserver the server uses for
// ChannelDeliveries (--kubeconfig, or the in-cluster service account).
func (o *Options) ClientConfig() (*restclient.Config, error) { return o.restConfig() }

func (o *Options) restConfig() (*restclient.Config, error) {
	var cfg *restclient.Config
	var err error
	switch {
	case o.RESTConfig != nil:
		cfg = restclient.CopyConfig(o.RESTConfig)
	case o.Kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	default:
		cfg, err = restclient.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig for ChannelDeliveries: %w", err)
	}
	// The inbox server runs no leader election: the config Configure
	// returns for it is not needed.
	if _, err := apflimit.Configure(cfg, apflimit.Config{QPS: float64(o.QPS), Burst: o.Burst, Adaptive: o.AdaptiveQPS}); err != nil {
		return nil, err
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "herald-inbox"
	}
	return cfg, nil
}
