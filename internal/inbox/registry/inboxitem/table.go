package inboxitem

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

// maxTitleCell keeps `kubectl get inboxitems` rows on one line.
const maxTitleCell = 60

var tableColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the item (that of its ChannelDelivery)."},
	{Name: "Title", Type: "string", Description: "Short headline."},
	{Name: "Category", Type: "string", Description: "Category of the notification."},
	{Name: "Type", Type: "string", Description: "informational, warning, critical or approval."},
	{Name: "Read", Type: "boolean", Description: "Whether the item has been read."},
	{Name: "Age", Type: "string", Description: "Time since the item arrived."},
	{Name: "Archived", Type: "boolean", Priority: 1, Description: "Whether the item has been archived."},
	{Name: "Response", Type: "string", Priority: 1, Description: "The answer given to an approval item."},
	{Name: "Notification", Type: "string", Priority: 1, Description: "The Notification the item belongs to."},
}

// convertToTable renders items for kubectl's table output, one row per
// item, for a single item, a list, and every watch event.
func convertToTable(obj runtime.Object, now time.Time) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: tableColumns}
	switch o := obj.(type) {
	case *inboxv1.InboxItem:
		t.ResourceVersion = o.ResourceVersion
		t.Rows = append(t.Rows, row(o, now))
	case *inboxv1.InboxItemList:
		t.ResourceVersion = o.ResourceVersion
		for i := range o.Items {
			t.Rows = append(t.Rows, row(&o.Items[i], now))
		}
	default:
		return nil, fmt.Errorf("cannot show %T as a table", obj)
	}
	return t, nil
}

func row(it *inboxv1.InboxItem, now time.Time) metav1.TableRow {
	title := it.Spec.Title
	if r := []rune(title); len(r) > maxTitleCell {
		title = string(r[:maxTitleCell-1]) + "…"
	}
	age := "<unknown>"
	arrived := it.CreationTimestamp
	if it.Spec.CreatedTime != nil {
		arrived = *it.Spec.CreatedTime
	}
	if !arrived.IsZero() {
		age = duration.HumanDuration(now.Sub(arrived.Time))
	}
	response := ""
	if r := it.Status.Response; r != nil {
		response = r.Action
	}
	return metav1.TableRow{
		Cells:  []any{it.Name, title, it.Spec.Category, it.Spec.Type, it.Status.Read, age, it.Status.Archived, response, it.Spec.Notification},
		Object: runtime.RawExtension{Object: it},
	}
}
