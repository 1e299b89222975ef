package dev

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	heraldinbox "github.com/herald-dev/herald/web/herald-inbox"
)

// The inbox page is plain HTML, CSS and JavaScript, embedded in the binary:
// no build step.
//
//go:embed web
var webFiles embed.FS

// The page talks to the inbox API through a small proxy in `herald dev`
// that forwards to kube-apiserver as the admin, impersonating the demo
// user the page picked. THIS PROXY IS FOR LOCAL DEVELOPMENT ONLY: it
// authenticates nobody (anyone who can reach the loopback port can act as
// any demo user). It listens on 127.0.0.1 only, forwards only the inbox
// API paths of the demo namespace, and impersonates only usernames of
// Recipients in that namespace. A real front end authenticates its users
// and calls the inbox API with their own credentials.

// startWeb serves the inbox page, its configuration, the proxy and the
// sinks' recent messages on the web port.
func (e *Env) startWeb() error {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		return err
	}
	transport, err := rest.TransportFor(e.Config)
	if err != nil {
		return err
	}
	target, err := url.Parse(e.APIServerURL())
	if err != nil {
		return err
	}
	proxyLog := e.log.WithName("web-proxy")
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		// A closed tab ends its stream with an error that is nobody's
		// business; the terminal stays quiet.
		ErrorLog: log.New(logrWriter{proxyLog}, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				proxyLog.Info("forwarding to kube-apiserver failed", "path", r.URL.Path, "error", err.Error())
				http.Error(w, "kube-apiserver: "+err.Error(), http.StatusBadGateway)
			}
		},
		// Flush every write at once: the stream is Server-Sent Events.
		FlushInterval: -1,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = target.Scheme, target.Host
			r.Out.Host = target.Host
			// Only the identity chosen here reaches kube-apiserver.
			for k := range r.Out.Header {
				if strings.HasPrefix(strings.ToLower(k), "impersonate-") || strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Cookie") {
					r.Out.Header.Del(k)
				}
			}
			r.Out.Header.Set("Impersonate-User", r.In.Header.Get(userHeader))
			r.Out.Header.Del(userHeader)
		},
	}

	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/config", e.serveConfig)
	mux.HandleFunc("GET /api/sinks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, e.sinks.Messages())
	})
	groupPath := "/apis/" + inboxv1.GroupName + "/" + inboxv1.GroupVersion.Version + "/"
	inboxPath := groupPath + "namespaces/" + e.Namespace + "/"
	var forwardTo func(w http.ResponseWriter, r *http.Request, path string)
	forward := func(w http.ResponseWriter, r *http.Request, rest string) { forwardTo(w, r, inboxPath+rest) }
	forwardTo = func(w http.ResponseWriter, r *http.Request, path string) {
		user := r.PathValue("user")
		users, err := e.demoUsernames(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if !slices.ContainsFunc(users, func(u recipientView) bool { return u.Username == user }) {
			http.Error(w, "not a demo user: "+user, http.StatusForbidden)
			return
		}
		out := r.Clone(r.Context())
		out.URL.Path = path
		out.URL.RawPath = ""
		out.Header.Set(userHeader, user)
		proxy.ServeHTTP(w, out)
	}
	mux.HandleFunc("GET /api/users/{user}/stream", func(w http.ResponseWriter, r *http.Request) {
		forward(w, r, "stream")
	})
	mux.HandleFunc("GET /api/users/{user}/inboxitems", func(w http.ResponseWriter, r *http.Request) {
		forward(w, r, "inboxitems")
	})
	mux.HandleFunc("GET /api/users/{user}/inboxitems/{name}", func(w http.ResponseWriter, r *http.Request) {
		forward(w, r, "inboxitems/"+r.PathValue("name"))
	})
	mux.HandleFunc("PATCH /api/users/{user}/inboxitems/{name}/status", func(w http.ResponseWriter, r *http.Request) {
		forward(w, r, "inboxitems/"+r.PathValue("name")+"/status")
	})
	// The <herald-inbox> component speaks the inbox API's own paths below
	// a base URL; this is its base for a demo user. Only the demo
	// namespace and the cluster-scoped inboxcounts and bulkactions pass.
	componentAPI := func(w http.ResponseWriter, r *http.Request) {
		rest := r.PathValue("rest")
		nsPrefix := "namespaces/" + e.Namespace + "/"
		switch {
		case strings.HasPrefix(rest, nsPrefix):
			forward(w, r, strings.TrimPrefix(rest, nsPrefix))
		case rest == "stream" || rest == "bulkactions" || strings.HasPrefix(rest, "inboxcounts/"):
			forwardTo(w, r, groupPath+rest)
		default:
			http.Error(w, "herald dev forwards the demo namespace's inbox only", http.StatusForbidden)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPatch, http.MethodPost} {
		mux.HandleFunc(method+" /api/users/{user}"+groupPath+"{rest...}", componentAPI)
	}
	mux.Handle("GET /herald-inbox.js", http.FileServerFS(heraldinbox.FS))

	l, err := listen(e.Ports.Web)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: loopbackOnly(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(logrWriter{proxyLog}, "", 0)}
	go func() { _ = srv.Serve(l) }()
	e.onStop(func() error {
		// Open streams never finish by themselves: give requests a moment,
		// then close what is left.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return srv.Close()
		}
		return nil
	})
	return nil
}

// loopbackOnly refuses requests whose Host is not a loopback name, so a web
// page elsewhere cannot reach the proxy through DNS rebinding.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if name, _, err := net.SplitHostPort(host); err == nil {
			host = name
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "herald dev serves localhost only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// logrWriter sends the standard library's log lines to a logr logger.
type logrWriter struct{ log logr.Logger }

func (w logrWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

// userHeader carries the chosen user from the route to the proxy's
// Rewrite; it never leaves this process.
const userHeader = "X-Herald-Dev-User"

type recipientView struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"displayName,omitempty"`
	Roles       []string `json:"roles,omitempty"`
}

type pageConfig struct {
	Namespace  string          `json:"namespace"`
	Users      []recipientView `json:"users"`
	MailpitURL string          `json:"mailpitURL"`
	Inbox      bool            `json:"inbox"`
	InboxError string          `json:"inboxError,omitempty"`
}

func (e *Env) serveConfig(w http.ResponseWriter, r *http.Request) {
	users, err := e.demoUsernames(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	cfg := pageConfig{Namespace: e.Namespace, Users: users, MailpitURL: e.MailpitURL(), Inbox: e.InboxErr == nil}
	if e.InboxErr != nil {
		cfg.InboxError = e.InboxErr.Error()
	}
	writeJSON(w, cfg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
