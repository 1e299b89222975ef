package apiserver

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxcounts"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
	"github.com/herald-dev/herald/internal/inbox/registry/preferences"
	"github.com/herald-dev/herald/internal/inbox/stream"
)

// Config is the inbox server's configuration.
type Config struct {
	// Generic is the generic API server's configuration: serving,
	// delegated authentication and authorization, OpenAPI.
	Generic *genericapiserver.Config
	// Kube reaches kube-apiserver to watch ChannelDeliveries and write
	// their status.
	Kube *restclient.Config
	// Namespace limits the inbox to one namespace's deliveries; empty
	// serves all namespaces.
	Namespace string
	// Heartbeat is the interval of SSE heartbeat comments.
	Heartbeat time.Duration
	// History is how many events the hub keeps for resuming streams and
	// watches.
	History int
	// Clock is the inbox's one clock: item expiry, the times a write
	// stamps, table ages, heartbeats and bookmarks. Nil means the real
	// clock.
	Clock clock.WithTickerAndDelayedExecution
	// Logger receives the inbox's own logs.
	Logger logr.Logger
}

// CompletedConfig is a Config with its defaults filled in, ready for New.
// Only Complete makes one.
type CompletedConfig struct {
	*completedConfig
}

type completedConfig struct {
	generic genericapiserver.CompletedConfig
	extra   *Config
}

// Complete fills in what the configuration leaves open: the generic
// server's defaults, and the real clock when Clock is nil.
func (c *Config) Complete() CompletedConfig {
	extra := *c
	if extra.Clock == nil {
		extra.Clock = clock.RealClock{}
	}
	return CompletedConfig{&completedConfig{generic: c.Generic.Complete(nil), extra: &extra}}
}

// New builds the server: the hub fed with in-app deliveries, the
// inboxitems storage, and the SSE stream in the handler chain.
func (c CompletedConfig) New() (*Server, error) {
	x := c.extra
	h := hub.New(x.History, x.Clock, x.Logger)
	lw, err := deliveryListWatch(x.Kube, x.Namespace)
	if err != nil {
		return nil, err
	}
	writeScheme := runtime.NewScheme()
	if err := notifyv1.AddToScheme(writeScheme); err != nil {
		return nil, err
	}
	// Namespaces, for the policy that locks categories of preferences.
	if err := corev1.AddToScheme(writeScheme); err != nil {
		return nil, err
	}
	writer, err := client.New(x.Kube, client.Options{Scheme: writeScheme})
	if err != nil {
		return nil, fmt.Errorf("creating the delivery client: %w", err)
	}

	// The stream is served inside the handler chain, after authentication
	// and authorization, but before go-restful: go-restful owns every path
	// under /apis/inbox.herald.dev/v1alpha1, so a handler registered on the
	// NonGoRestfulMux would never see .../stream. The handler needs the
	// hub, made just above; the generic server builds its chain in New.
	streams := stream.NewHandler(h, x.Heartbeat, x.Clock, x.Logger.WithName("stream"))
	c.generic.BuildHandlerChainFunc = func(api http.Handler, gc *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(routeStream(api, streams), gc)
	}
	generic, err := c.generic.New("herald-inbox", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	if err := generic.AddReadyzChecks(healthz.NamedCheck("inbox-cache", func(*http.Request) error {
		if !h.HasSynced() {
			return hub.ErrNotSynced
		}
		return nil
	})); err != nil {
		return nil, err
	}

	items, status := inboxitem.NewREST(h, writer, x.Clock)
	group := genericapiserver.NewDefaultAPIGroupInfo(inboxv1.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	group.VersionedResourcesStorageMap[inboxv1.GroupVersion.Version] = map[string]rest.Storage{
		"inboxitems":        items,
		"inboxitems/status": status,
		"inboxcounts":       inboxcounts.NewREST(h),
		"bulkactions":       inboxitem.NewBulkREST(items),
		"preferences":       preferences.NewREST(writer),
	}
	if err := generic.InstallAPIGroup(&group); err != nil {
		return nil, err
	}
	return &Server{generic: generic, hub: h, lw: lw}, nil
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
