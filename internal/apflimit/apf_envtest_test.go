package apflimit_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-dev/herald/internal/apflimit"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

const apfUser = "herald-apf-test"

// TestAgainstPriorityAndFairness gives a user a priority level of one seat
// that rejects what it cannot run at once, and sends a burst of
// concurrent LISTs as that user through the limiter: kube-apiserver
// answers 429s, the limiter slows down, and every request still completes.
func TestAgainstPriorityAndFairness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver")
	}
	g := NewWithT(t)
	env, err := heraldenvtest.New()
	g.Expect(err).NotTo(HaveOccurred())
	env.CRDDirectoryPaths = nil
	// A small server-wide concurrency, so that the test's level gets one
	// seat: its share of it, rounded up.
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("max-requests-inflight", "20")
	args.Set("max-mutating-requests-inflight", "10")
	adminCfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	admin := kubernetes.NewForConfigOrDie(adminCfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	_, err = admin.FlowcontrolV1().PriorityLevelConfigurations().Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: apfUser},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](1),
				LendablePercent:          ptr.To[int32](0),
				BorrowingLimitPercent:    ptr.To[int32](0),
				LimitResponse:            flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
			},
		},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	schema, err := admin.FlowcontrolV1().FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: apfUser},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: apfUser},
			MatchingPrecedence:         100,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: apfUser}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, Namespaces: []string{"*"}, ClusterScope: true,
				}},
			}},
		},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	// Not the aggregated "view": envtest runs no controller that fills it.
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: apfUser},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: apfUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: apfUser},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: apfUser}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	for i := range 50 {
		_, err := admin.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)},
			Data:       map[string]string{"k": fmt.Sprintf("%0512d", i)},
		}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}

	user, err := env.AddUser(envtest.User{Name: apfUser}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	// Wait until kube-apiserver classifies the user's requests into the
	// test's flow schema (it loads the configuration asynchronously).
	plain, err := rest.HTTPClientFor(user.Config())
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() (string, error) {
		resp, err := plain.Get(strings.TrimSuffix(user.Config().Host, "/") + "/api/v1/namespaces/default/configmaps?limit=1")
		if err != nil {
			return "", err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID), nil
	}).WithTimeout(time.Minute).Should(Equal(string(schema.UID)))

	const ceiling, requests = 200, 60
	var throttled atomic.Int32
	limiter, err := apflimit.New(apflimit.Options{
		Policy:      apflimit.DefaultPolicy(ceiling),
		Burst:       ceiling,
		MaxPause:    apflimit.DefaultMaxPause,
		OnThrottled: func() { throttled.Add(1) },
	})
	g.Expect(err).NotTo(HaveOccurred())
	cfg := user.Config()
	apflimit.Install(cfg, limiter)
	cs := kubernetes.NewForConfigOrDie(cfg)

	errs := make(chan error, requests)
	var wg sync.WaitGroup
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.Expect(err).NotTo(HaveOccurred(), "a request did not complete through client-go's retries")
	}
	t.Logf("%d requests, %d answered 429, limiter at %.1f QPS of %d", requests, throttled.Load(), limiter.QPS(), ceiling)
	g.Expect(throttled.Load()).To(BeNumerically(">", 0), "priority and fairness answered no 429")
	g.Expect(limiter.QPS()).To(BeNumerically("<", ceiling))
}
