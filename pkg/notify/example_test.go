package notify_test

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/pkg/notify"
)

// A controller tells the database team that a backup failed. The key
// names the backup run, so a retried reconcile sends nothing twice.
func Example() {
	n, err := notify.New("shop", "backup-failed/db-0/2026-11-28").
		ToRoles("dba").
		On(v1alpha1.ChannelInApp, v1alpha1.ChannelEmail).
		Type(v1alpha1.TypeWarning).
		Category("backups").
		Title("Backup of db-0 failed").
		Message("The nightly backup of db-0 failed: the volume is full.").
		DeleteAfterFinished(7 * 24 * time.Hour).
		Build()
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Namespace, n.Name)
	fmt.Println(n.Spec.Type, n.Spec.Channels, n.Spec.Audience.Roles)
	// Output:
	// shop backup-failed-db-0-2026-11-28-820e6c235b
	// warning [inApp email] [dba]
}

// Sending from a reconciler with the manager's client. A template renders
// the content; the Notification is owned by the object it is about.
func ExampleBuilder_Send() {
	var (
		ctx    = context.Background()
		c      client.Client // mgr.GetClient()
		backup client.Object // the object being reconciled
	)
	n, err := notify.New(backup.GetNamespace(), "backup-failed/"+backup.GetName()+"/"+string(backup.GetUID())).
		ToRoles("dba").
		On(v1alpha1.ChannelInApp).
		Type(v1alpha1.TypeWarning).
		Template("backup-failed", map[string]string{"database": backup.GetName()}).
		OwnedBy(backup).
		Send(ctx, c)
	if err != nil {
		ctrl.Log.Error(err, "notifying the database team")
		return
	}
	ctrl.Log.Info("notified", "notification", n.Name, "phase", n.Status.Phase)
}
