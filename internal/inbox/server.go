// Package inbox is Herald's aggregated API server: inbox.herald.dev/v1alpha1
// inboxitems, a per-user view of in-app ChannelDeliveries, with get, list,
// watch, patch and a Server-Sent Events stream. It stores nothing: a
// reflector feeds the in-app deliveries into a Hub, and writes go to the
// deliveries' status. Identity comes from kube-apiserver's front proxy
// (request headers over its client certificate), authorization is
// delegated to kube-apiserver with SubjectAccessReviews.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	inboxopenapi "github.com/herald-dev/herald/internal/inbox/openapi"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
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
	QPS     float32
	Burst   int

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
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Queries per second to the Kubernetes API server.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of queries to the Kubernetes API server.")
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

// Server is a configured inbox API server, ready to Run.
type Server struct {
	generic *genericapiserver.GenericAPIServer
	hub     *hub.Hub
	lw      cache.ListerWatcher
}

// Hub returns the server's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// NewServer builds the server from the options.
func (o *Options) NewServer() (*Server, error) {
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
	h := hub.New(o.History, nil, o.Logger)
	lw, err := deliveryListWatch(kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	writeScheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(writeScheme); err != nil {
		return nil, err
	}
	writer, err := client.New(kube, client.Options{Scheme: writeScheme})
	if err != nil {
		return nil, fmt.Errorf("creating the delivery client: %w", err)
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
	// The stream is served inside the handler chain, after authentication
	// and authorization, but before go-restful: go-restful owns every path
	// under /apis/inbox.herald.dev/v1alpha1, so a handler registered on the
	// NonGoRestfulMux would never see .../stream.
	streams := stream.NewHandler(h, o.Heartbeat, o.Logger.WithName("stream"))
	cfg.BuildHandlerChainFunc = func(api http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(routeStream(api, streams), c)
	}
	cfg.AddReadyzChecks(healthz.NamedCheck("inbox-cache", func(*http.Request) error {
		if !h.HasSynced() {
			return hub.ErrNotSynced
		}
		return nil
	}))

	generic, err := cfg.Complete(nil).New("herald-inbox", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	items, status := inboxitem.NewREST(h, writer)
	group := genericapiserver.NewDefaultAPIGroupInfo(inboxv1.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	group.VersionedResourcesStorageMap[inboxv1.GroupVersion.Version] = map[string]rest.Storage{
		"inboxitems":        items,
		"inboxitems/status": status,
	}
	if err := generic.InstallAPIGroup(&group); err != nil {
		return nil, err
	}
	return &Server{generic: generic, hub: h, lw: lw}, nil
}

// Run feeds the hub and serves until ctx ends. It serves only once the
// first list of deliveries has arrived, so nobody sees an empty inbox that
// is merely not loaded yet.
func (s *Server) Run(ctx context.Context) error {
	go s.hub.Run(ctx, s.lw)
	if err := s.hub.WaitForSync(ctx); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		s.hub.Shutdown()
	}()
	return s.generic.PrepareRun().RunWithContext(ctx)
}

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
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	if cfg.UserAgent == "" {
		cfg.UserAgent = "herald-inbox"
	}
	return cfg, nil
}

// deliveryListWatch lists and watches in-app ChannelDeliveries only: the
// channel label keeps other channels' deliveries out of memory.
func deliveryListWatch(cfg *restclient.Config, namespace string) (cache.ListerWatcher, error) {
	s := runtime.NewScheme()
	if err := notifyv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c := restclient.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &notifyv1.GroupVersion
	c.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(s)}
	rc, err := restclient.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	selector := notifyv1.LabelChannel + "=" + string(notifyv1.ChannelInApp)
	return cache.NewFilteredListWatchFromClient(rc, "channeldeliveries", namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = selector
	}), nil
}

func routeStream(api, streams http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := genericapirequest.RequestInfoFrom(r.Context()); ok && stream.IsRequest(ri) {
			streams.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// refuseAnonymous turns anonymous requests into 401s, except for health
// probes: an inbox is only ever someone's, and a request that is nobody's
// should fail as unauthenticated, not as forbidden.
func refuseAnonymous(a authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := a.AuthenticateRequest(r)
		if ok && resp.User.GetName() == user.Anonymous && !isProbe(r.URL.Path) {
			return nil, false, nil
		}
		return resp, ok, err
	})
}

func isProbe(path string) bool {
	for _, p := range []string{"/healthz", "/readyz", "/livez"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}
