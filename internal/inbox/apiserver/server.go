package apiserver

import (
	"context"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/internal/inbox/hub"
	"github.com/herald-dev/herald/internal/inbox/stream"
)

// Server is a configured inbox API server, ready to Run.
type Server struct {
	generic *genericapiserver.GenericAPIServer
	hub     *hub.Hub
	lw      cache.ListerWatcher
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
