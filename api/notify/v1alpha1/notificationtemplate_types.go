package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TemplateParam declares a parameter a template accepts.
type TemplateParam struct {
	// name of the parameter, used as {{ .name }} in the template.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// required params must be given by every notification.
	// +optional
	Required bool `json:"required,omitempty"`
	// default is used when the notification gives no value.
	// +optional
	Default string `json:"default,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
}

// NotificationTemplateContent is reusable notification content written as Go
// text/template (html/template for email HTML).
// +kubebuilder:validation:XValidation:rule="!self.params.exists(p, has(p.required) && p.required && has(p.default))",message="a required param cannot have a default"
type NotificationTemplateContent struct {
	// params the template accepts.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:default={}
	// +optional
	Params []TemplateParam `json:"params"`
	// title template.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Title string `json:"title,omitempty"`
	// message template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message"`
	// email overrides subject and bodies for email.
	// +optional
	Email *EmailContent `json:"email,omitempty"`
	// whatsapp overrides the WhatsApp text or names an approved template.
	// +optional
	WhatsApp *WhatsAppContent `json:"whatsapp,omitempty"`
	// slack overrides the Slack text or gives Block Kit blocks.
	// +optional
	Slack *SlackContent `json:"slack,omitempty"`
	// teams gives the Adaptive Card sent to Microsoft Teams.
	// +optional
	Teams *TeamsContent `json:"teams,omitempty"`
	// telegram overrides the Telegram text and sets its parse mode.
	// +optional
	Telegram *TelegramContent `json:"telegram,omitempty"`
	// webhookPayload is a template for the webhook JSON body.
	// +optional
	WebhookPayload string `json:"webhookPayload,omitempty"`
}

// NotificationTemplateStatus is the observed state of a template.
type NotificationTemplateStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NotificationTemplate is reusable notification content with parameters.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ntpl,categories=herald
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotificationTemplateContent `json:"spec"`
	Status NotificationTemplateStatus  `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationTemplateList contains a list of NotificationTemplate.
type NotificationTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NotificationTemplate{}, &NotificationTemplateList{})
}
