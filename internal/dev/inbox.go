package dev

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/pki"
	"github.com/herald-dev/herald/internal/inbox/apiserver"
	"github.com/herald-dev/herald/internal/inbox/stream"
)

// The inbox API server runs in this process and is reached the way a
// cluster reaches it: kube-apiserver's aggregator proxies
// /apis/inbox.herald.dev/v1alpha1 through an APIService and a Service of
// type ExternalName pointing at localhost:<inbox port>, authenticates and
// authorizes the caller with RBAC, and forwards the identity in front-proxy
// headers. So `kubectl get inboxitems --as alice` works as in a cluster.
const (
	InboxNamespace   = "herald-system"
	inboxServiceName = "herald-inbox"
	inboxAPIService  = "v1alpha1.inbox.herald.dev"
)

// StartInboxServer starts the inbox aggregated API server in-process on the
// inbox port and registers it with kube-apiserver (Service, APIService, and
// the herald-inbox-user RBAC from config/apiserver), then waits until a
// demo user can list their inbox through kube-apiserver. It returns a
// function that stops the server.
func (e *Env) StartInboxServer(ctx context.Context) (stop func(), err error) {
	pkiDir := e.state.path("pki")
	ca, err := pki.NewCA("herald-dev-inbox-ca")
	if err != nil {
		return nil, err
	}
	serving, err := ca.Serving("herald-inbox",
		[]string{inboxServiceName + "." + InboxNamespace + ".svc", "localhost"}, []net.IP{net.ParseIP(loopback)})
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(pkiDir, "inbox-tls.crt"), filepath.Join(pkiDir, "inbox-tls.key")
	if err := serving.Write(certFile, keyFile); err != nil {
		return nil, err
	}

	l, err := listen(e.Ports.Inbox)
	if err != nil {
		return nil, fmt.Errorf("inbox API server: %w", err)
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP(loopback)
	o.SecureServing.BindPort = e.Ports.Inbox
	o.SecureServing.ServerCert.CertKey.CertFile = certFile
	o.SecureServing.ServerCert.CertKey.KeyFile = keyFile
	// TokenReviews, SubjectAccessReviews and the front-proxy CA (from
	// kube-system/extension-apiserver-authentication) through the admin
	// kubeconfig, as a pod would use its service account.
	o.Authentication.RemoteKubeConfigFile = e.Kubeconfig
	o.Authorization.RemoteKubeConfigFile = e.Kubeconfig
	// Trying the inbox right after the RBAC below exists must not be
	// refused for long by a cached denial.
	o.Authorization.DenyCacheTTL = time.Second
	o.RESTConfig = rest.CopyConfig(e.Config)
	o.Logger = e.log.WithName("inbox")
	srv, err := o.NewServer()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("configuring the inbox API server: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{}) // closed when Run has returned
	var runErr error
	go func() {
		runErr = srv.Run(runCtx)
		close(exited)
		if runCtx.Err() == nil {
			e.fail(fmt.Errorf("the inbox API server stopped: %v", runErr))
		}
	}()
	stop = func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			e.log.Info("the inbox API server did not stop within 10s; leaving it")
		}
	}
	// An early exit (a port taken, a bad certificate) ends the wait below
	// at once, with Run's error.
	running := func() error {
		select {
		case <-exited:
			return fmt.Errorf("the inbox API server exited: %v", runErr)
		default:
			return nil
		}
	}

	if err := e.registerInbox(ctx, ca.CertPEM); err != nil {
		stop()
		return nil, err
	}
	if err := e.waitInbox(ctx, running); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// registerInbox creates or updates the Service, APIService and user RBAC.
func (e *Env) registerInbox(ctx context.Context, caBundle []byte) error {
	c := e.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: InboxNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	objs := InboxRegistration(e.Ports.Inbox, caBundle)
	rbac, err := e.inboxUserRBAC()
	if err != nil {
		return err
	}
	objs = append(objs, rbac...)
	for _, o := range objs {
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("herald-dev"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return nil
}

// InboxRegistration returns what makes kube-apiserver's aggregator send
// inbox.herald.dev to an inbox server listening on port of this machine: an
// ExternalName Service in herald-system pointing at localhost, and the
// APIService. With no caBundle the aggregator does not verify the server's
// certificate (tests whose server certificate is generated in memory).
// The namespace must exist.
func InboxRegistration(port int, caBundle []byte) []client.Object {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: inboxServiceName, Namespace: InboxNamespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port), TargetPort: intstr.FromInt32(int32(port))}},
		},
	}
	spec := map[string]any{
		"group":                inboxv1.GroupName,
		"version":              inboxv1.GroupVersion.Version,
		"groupPriorityMinimum": int64(1000),
		"versionPriority":      int64(15),
		"service":              map[string]any{"name": inboxServiceName, "namespace": InboxNamespace, "port": int64(port)},
	}
	if len(caBundle) > 0 {
		spec["caBundle"] = base64.StdEncoding.EncodeToString(caBundle)
	} else {
		spec["insecureSkipTLSVerify"] = true
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": inboxAPIService},
		"spec":       spec,
	}}
	return []client.Object{svc, apiService}
}

// inboxUserRBAC returns the herald-inbox-user ClusterRole and its binding
// to every authenticated user, from config/apiserver (what production
// installs), or the same built in when the repository has none.
func (e *Env) inboxUserRBAC() ([]client.Object, error) {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox-user"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{inboxv1.GroupName}, Resources: []string{"inboxitems", "inboxitems/status"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			{APIGroups: []string{inboxv1.GroupName}, Resources: []string{stream.Resource}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{inboxv1.GroupName}, Resources: []string{"inboxcounts"}, Verbs: []string{"get"}},
			{APIGroups: []string{inboxv1.GroupName}, Resources: []string{"bulkactions"}, Verbs: []string{"create"}},
			{APIGroups: []string{inboxv1.GroupName}, Resources: []string{"preferences"}, Verbs: []string{"get", "update", "patch"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox-user"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "herald-inbox-user"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "system:authenticated"}},
	}
	if e.opts.RepoRoot != "" {
		for file, obj := range map[string]any{"user_clusterrole.yaml": role, "user_clusterrolebinding.yaml": binding} {
			b, err := os.ReadFile(filepath.Join(e.opts.RepoRoot, "config", "apiserver", file))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err == nil {
				err = yaml.UnmarshalStrict(b, obj)
			}
			if err != nil {
				return nil, fmt.Errorf("reading config/apiserver/%s: %w", file, err)
			}
		}
	}
	role.TypeMeta = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}
	binding.TypeMeta = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}
	return []client.Object{role, binding}, nil
}

// waitInbox waits until the APIService is Available and a demo user can
// list their inbox through kube-apiserver. It gives up at once when running
// reports that the server has exited.
func (e *Env) waitInbox(ctx context.Context, running func() error) error {
	uc, err := client.New(e.UserConfig(DemoUsers[0].Username), client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := running(); err != nil {
			return false, err
		}
		last = e.inboxAnswers(ctx, uc)
		return last == nil, nil
	})
	if err != nil && wait.Interrupted(err) && last != nil {
		err = fmt.Errorf("%w (last error: %v)", err, last)
	}
	if err != nil {
		return fmt.Errorf("waiting for the inbox API (inbox.herald.dev) to answer through kube-apiserver: %w", err)
	}
	return nil
}

// inboxAnswers checks once that the APIService is Available and that the
// user client uc can list its inbox.
func (e *Env) inboxAnswers(ctx context.Context, uc client.Client) error {
	svc := &unstructured.Unstructured{}
	svc.SetAPIVersion("apiregistration.k8s.io/v1")
	svc.SetKind("APIService")
	if err := e.Client.Get(ctx, client.ObjectKey{Name: inboxAPIService}, svc); err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
	available := false
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Available" && m["status"] == "True" {
			available = true
		}
	}
	if !available {
		return fmt.Errorf("APIService %s not Available: %v", inboxAPIService, conds)
	}
	return uc.List(ctx, &inboxv1.InboxItemList{}, client.InNamespace(e.Namespace))
}

// UserConfig returns a client configuration that acts as username through
// impersonation by the admin, as `kubectl --as` does.
func (e *Env) UserConfig(username string) *rest.Config {
	c := rest.CopyConfig(e.Config)
	c.Impersonate = rest.ImpersonationConfig{UserName: username}
	return c
}
