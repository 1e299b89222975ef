package inbox_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/audience"
	"github.com/herald-dev/herald/internal/patch"
)

var _ = Describe("preferences", func() {
	It("lets each person read and edit only their own, within the namespace's locks", func() {
		ns := newNamespace()
		var namespace corev1.Namespace
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Name: ns}, &namespace)).To(Succeed())
		namespace.Annotations = map[string]string{inboxv1.LockedCategoriesAnnotation: "security, compliance"}
		Expect(k8sClient.Update(suiteCtx, &namespace)).To(Succeed())
		for name, user := range map[string]string{"alice-work": "alice", "bob": "bob"} {
			Expect(k8sClient.Create(suiteCtx, &notifyv1.Recipient{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: notifyv1.RecipientSpec{Username: user, Email: user + "@example.com", Phone: "+4915112345678",
					Preferences: notifyv1.Preferences{Digests: []notifyv1.DigestPreference{{Categories: []string{"builds"}, Schedule: "0 9 * * *"}}}},
			})).To(Succeed())
		}
		alice, bob, carol := userClient("alice"), userClient("bob"), userClient("carol")
		me := client.ObjectKey{Namespace: ns, Name: inboxv1.PreferencesName}

		var prefs inboxv1.InboxPreferences
		Expect(alice.Get(suiteCtx, me, &prefs)).To(Succeed())
		Expect(prefs.Status.Recipients).To(Equal([]string{"alice-work"}))
		Expect(prefs.Status.LockedCategories).To(Equal([]string{"compliance", "security"}))

		By("alice turns off WhatsApp for deployments and sets her timezone")
		Expect(alice.Patch(suiteCtx, &inboxv1.InboxPreferences{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me"}},
			client.RawPatch(types.MergePatchType, []byte(`{"spec":{"timezone":"Europe/Berlin","categories":[{"category":"deployments","channels":["inApp","email"]}]}}`)))).To(Succeed())
		var r notifyv1.Recipient
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "alice-work"}, &r)).To(Succeed())
		Expect(r.Spec.Timezone).To(Equal("Europe/Berlin"))
		Expect(r.Spec.Preferences.Categories).To(Equal([]notifyv1.CategoryPreference{{Category: "deployments", Channels: []notifyv1.Channel{"inApp", "email"}}}))
		Expect(r.ManagedFields).To(ContainElement(HaveField("Manager", patch.InboxFieldOwner)))
		Expect(r.Spec.Preferences.Digests).To(Equal([]notifyv1.DigestPreference{{Categories: []string{"builds"}, Schedule: "0 9 * * *"}}),
			"saving preferences/me keeps the Recipient's digests")
		// What the fan-out decides for her next deployments notification.
		dec := audience.Decide(&r, notifyv1.TypeInformational, "deployments", notifyv1.ChannelWhatsApp, time.Now())
		Expect(dec.Send).To(BeFalse())
		Expect(dec.Reason).To(Equal(notifyv1.ReasonCategoryMuted))
		Expect(audience.Decide(&r, notifyv1.TypeInformational, "deployments", notifyv1.ChannelEmail, time.Now()).Send).To(BeTrue())
		Expect(audience.Decide(&r, notifyv1.TypeCritical, "deployments", notifyv1.ChannelWhatsApp, time.Now()).Send).To(BeTrue(), "critical overrides")

		By("a locked category cannot be muted")
		err := alice.Patch(suiteCtx, &inboxv1.InboxPreferences{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me"}},
			client.RawPatch(types.MergePatchType, []byte(`{"spec":{"categories":[{"category":"security","channels":[]}]}}`)))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`category "security" is locked`))
		err = alice.Patch(suiteCtx, &inboxv1.InboxPreferences{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me"}},
			client.RawPatch(types.MergePatchType, []byte(`{"spec":{"optOut":["pigeon"]}}`)))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)

		By("bob sees and changes only his own")
		Expect(bob.Get(suiteCtx, me, &prefs)).To(Succeed())
		Expect(prefs.Status.Recipients).To(Equal([]string{"bob"}))
		Expect(prefs.Spec.Categories).To(BeEmpty())
		Expect(bob.Patch(suiteCtx, &inboxv1.InboxPreferences{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "me"}},
			client.RawPatch(types.MergePatchType, []byte(`{"spec":{"optOut":["email"]}}`)))).To(Succeed())
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "alice-work"}, &r)).To(Succeed())
		Expect(r.Spec.Preferences.OptOut).To(BeEmpty())
		Expect(r.Spec.Timezone).To(Equal("Europe/Berlin"))
		for _, name := range []string{"alice", "alice-work"} {
			key := client.ObjectKey{Namespace: ns, Name: name}
			Expect(bob.Get(suiteCtx, key, &prefs)).To(Satisfy(apierrors.IsNotFound))
			Expect(bob.Patch(suiteCtx, &inboxv1.InboxPreferences{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
				client.RawPatch(types.MergePatchType, []byte(`{"spec":{"optOut":["inApp"]}}`)))).To(Satisfy(apierrors.IsNotFound))
		}
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "alice-work"}, &r)).To(Succeed())
		Expect(r.Spec.Preferences.OptOut).To(BeEmpty())

		By("someone without a Recipient here has no preferences here")
		Expect(carol.Get(suiteCtx, me, &prefs)).To(Satisfy(apierrors.IsNotFound))
	})
})
