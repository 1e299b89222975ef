package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations on the Notifications a schedule creates.
const (
	// LabelSchedule names the NotificationSchedule that created a
	// Notification (shortened with a hash beyond 63 characters).
	LabelSchedule = "notify.herald.dev/schedule"
	// AnnotationScheduledTime is the run (RFC 3339, UTC) a Notification
	// was created for; history limits keep the newest runs.
	AnnotationScheduledTime = "notify.herald.dev/scheduled-time"
)

// NotificationScheduleSpec creates Notifications on a cron schedule, the way
// a CronJob creates Jobs.
type NotificationScheduleSpec struct {
	// schedule in cron format: five fields ("0 9 * * 1") or a descriptor
	// such as "@daily" or "@every 1h".
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9]+(ns|us|ms|s|m|h)([0-9]+(ns|us|ms|s|m|h))*|[^ ]+( +[^ ]+){4})$')",message="schedule must be five cron fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily or @every 1h"
	Schedule string `json:"schedule"`
	// timeZone is an IANA zone, e.g. "Europe/Berlin"; default UTC.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// suspend stops new runs; runs missed while suspended are skipped.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// startingDeadlineSeconds: a run more than this late is skipped and
	// counted, never made up in a burst.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// successfulHistoryLimit keeps this many finished successful children.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=3
	// +optional
	SuccessfulHistoryLimit *int32 `json:"successfulHistoryLimit,omitempty"`
	// failedHistoryLimit keeps this many finished unsuccessful children.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	FailedHistoryLimit *int32 `json:"failedHistoryLimit,omitempty"`
	// notification is the template of each Notification created.
	Notification NotificationTemplateSpec `json:"notification"`
}

// NotificationScheduleStatus is the observed state of a schedule.
type NotificationScheduleStatus struct {
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// lastNotification is the name of the newest child.
	// +optional
	LastNotification string `json:"lastNotification,omitempty"`
	// active lists children that have not finished.
	// +optional
	Active []string `json:"active,omitempty"`
	// missedRuns counts runs that got no Notification: past the starting
	// deadline, or superseded by the one catch-up run after an outage.
	// +optional
	MissedRuns int64 `json:"missedRuns,omitempty"`
	// lastMissedTime is the newest run that was skipped. Together with
	// lastScheduleTime it marks how far the schedule has been handled,
	// so that a skipped run is counted once.
	// +optional
	LastMissedTime *metav1.Time `json:"lastMissedTime,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NotificationSchedule creates Notifications on a recurring schedule.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nsched,categories=herald
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="TimeZone",type=string,JSONPath=`.spec.timeZone`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotificationScheduleSpec   `json:"spec"`
	Status NotificationScheduleStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationScheduleList contains a list of NotificationSchedule.
type NotificationScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationSchedule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NotificationSchedule{}, &NotificationScheduleList{})
}
