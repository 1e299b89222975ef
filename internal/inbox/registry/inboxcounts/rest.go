// Package inboxcounts is the REST storage of inbox.herald.dev/v1alpha1
// inboxcounts: the caller's unread, unseen, archived and snoozed counts,
// in total and by namespace, category and type, for a badge. It is
// read-only and computed from the inbox hub's running tallies.
package inboxcounts

import (
	"context"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/hub"
)

// Hub is what the storage needs of the inbox hub (*hub.Hub).
type Hub interface {
	Counts(user, namespace string) (*inboxv1.InboxCounts, uint64, error)
}

// REST serves get of inboxcounts: "all" for every namespace of the caller,
// any other name for that namespace.
type REST struct{ hub Hub }

// NewREST returns the storage of inboxcounts.
func NewREST(h Hub) *REST { return &REST{hub: h} }

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.CategoriesProvider   = &REST{}
	_ rest.TableConvertor       = &REST{}
)

func (s *REST) New() runtime.Object     { return &inboxv1.InboxCounts{} }
func (s *REST) Destroy()                {}
func (s *REST) NamespaceScoped() bool   { return false }
func (s *REST) GetSingularName() string { return "inboxcounts" }
func (s *REST) Categories() []string    { return []string{"herald"} }

// Get returns the caller's counts. A namespace where the caller has no
// items has all-zero counts, like any other: the answer reveals nothing
// about the namespace.
func (s *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	var user string
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		user = u.GetName()
	}
	namespace := name
	if name == inboxv1.InboxCountsAll {
		namespace = ""
	}
	c, head, err := s.hub.Counts(user, namespace)
	if err != nil {
		if err == hub.ErrNotSynced || err == hub.ErrShutdown {
			return nil, apierrors.NewServiceUnavailable(err.Error())
		}
		return nil, apierrors.NewInternalError(err)
	}
	c.ResourceVersion = strconv.FormatUint(head, 10)
	return c, nil
}

var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "all, or the namespace counted."},
	{Name: "Unread", Type: "integer", Description: "Items neither read nor archived."},
	{Name: "Unseen", Type: "integer", Description: "Items neither seen nor archived."},
	{Name: "Total", Type: "integer", Description: "Items not archived."},
	{Name: "Archived", Type: "integer", Description: "Archived items."},
	{Name: "Snoozed", Type: "integer", Description: "Items snoozed until later."},
}

// ConvertToTable shows the totals as one row.
func (s *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: columns}
	if c, ok := obj.(*inboxv1.InboxCounts); ok {
		t.ResourceVersion = c.ResourceVersion
		n := c.Counts
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{c.Name, n.Unread, n.Unseen, n.Total, n.Archived, n.Snoozed},
			Object: runtime.RawExtension{Object: c},
		})
	}
	return t, nil
}
