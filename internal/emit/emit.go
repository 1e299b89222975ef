// Package emit builds the Notifications that Herald's own controllers
// create: a schedule's runs and an event rule's matches.
package emit

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// OwnedNotification is the Notification that owner (a schedule or an event
// rule) creates: named name in the owner's namespace, with the labels and
// annotations of its template's metadata (never nil, so the caller can add
// its own) and spec, controlled by owner, so that deleting the owner
// deletes it and its progress wakes the owner.
func OwnedNotification(owner client.Object, scheme *runtime.Scheme, name string, tmpl notifyv1.ObjectMetaTemplate, spec notifyv1.NotificationSpec) (*notifyv1.Notification, error) {
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   owner.GetNamespace(),
			Labels:      map[string]string{},
			Annotations: map[string]string{},
		},
		Spec: spec,
	}
	maps.Copy(n.Labels, tmpl.Labels)
	maps.Copy(n.Annotations, tmpl.Annotations)
	// The child goes to its owner's shard whatever the template says: the
	// owner's controller must see it to track it.
	delete(n.Labels, notifyv1.LabelShardKey)
	if key, ok := owner.GetLabels()[notifyv1.LabelShardKey]; ok {
		n.Labels[notifyv1.LabelShardKey] = key
	}
	return n, controllerutil.SetControllerReference(owner, n, scheme)
}
