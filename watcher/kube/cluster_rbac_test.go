package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minimesh/minimesh/mesh"
)

// The shipped ClusterRole grants everything the watcher does: with a token
// bound to it, the watcher syncs, publishes, writes Events and status. With
// a token bound to nothing, it never syncs (so the test can fail).
func TestClusterShippedRBACIsEnough(t *testing.T) {
	c := startCluster(t)
	c.env.Namespace(t, "minimesh-system")
	c.env.Namespace(t, "shop")
	if _, err := c.kube.RbacV1().ClusterRoles().Create(ctx, clusterRole(t), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "minimesh-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "minimesh"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "minimesh", Namespace: "minimesh-system"}},
	}
	if _, err := c.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("bound", func(t *testing.T) {
		token := c.env.ServiceAccountToken(t, "minimesh-system", "minimesh")
		_, p := c.watch(t, Config{RESTConfig: c.env.ConfigForToken(token)})
		if _, err := c.kube.CoreV1().Services("shop").Create(ctx, reviewsKubeService("shop"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.istio.NetworkingV1().DestinationRules("shop").Create(ctx, reviewsDR("shop"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		step(t, p, "invalid VirtualService created (as admin)", func() error {
			_, err := c.istio.NetworkingV1().VirtualServices("shop").Create(ctx, reviewsVS("shop", 10, 10), metav1.CreateOptions{})
			return err
		}, func(s *mesh.Snapshot) bool { return service(s, reviewsHost) != nil && len(s.DestinationRules) == 1 })
		// Events create and status patch are allowed too.
		waitForEvent(t, c.kube, "shop", "reviews")
		waitForCondition(t, func() (string, string) {
			vs, err := c.istio.NetworkingV1().VirtualServices("shop").Get(ctx, "reviews", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cond := findCondition(vs.Status.GetConditions(), conditionType)
			return cond.GetStatus(), cond.GetMessage()
		}, "False", "spec.http[0].route")
	})

	t.Run("unbound", func(t *testing.T) {
		token := c.env.ServiceAccountToken(t, "minimesh-system", "nobody")
		core, logs := observer.New(zapcore.WarnLevel)
		w, err := New(Config{RESTConfig: c.env.ConfigForToken(token), Log: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		published := 0
		err = w.Run(runCtx, func(*mesh.Snapshot) { published++ })
		if err == nil || published > 0 {
			t.Fatalf("Run without RBAC = %v after %d snapshots, want an error and none", err, published)
		}
		t.Logf("Run: %v", err)
		forbidden := slices.ContainsFunc(logs.All(), func(e observer.LoggedEntry) bool {
			return strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "forbidden")
		})
		if !forbidden {
			t.Errorf("no watch error saying forbidden was logged: %v", logs.All())
		}
	})
}
