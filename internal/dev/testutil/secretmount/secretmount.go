// Package secretmount stands in for the kubelet's Secret volumes in tests
// that run without nodes: it copies a Secret's data into a directory, one
// file per key, and keeps the files up to date as the Secret changes.
package secretmount

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Mirror writes the Secret key's data into dir every time it changes, until
// ctx ends. Files are replaced by rename, as the kubelet swaps its
// symlink, so a reader never sees half a file.
func Mirror(ctx context.Context, c client.Reader, key types.NamespacedName, dir string) {
	var last map[string][]byte
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err == nil && !maps.EqualFunc(s.Data, last, func(a, b []byte) bool { return string(a) == string(b) }) {
			for name, data := range s.Data {
				tmp := filepath.Join(dir, "."+name+".tmp")
				if os.WriteFile(tmp, data, 0o600) == nil {
					_ = os.Rename(tmp, filepath.Join(dir, name))
				}
			}
			last = s.Data
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
