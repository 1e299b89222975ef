package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestShardSelector(t *testing.T) {
	for sel, ok := range map[string]bool{
		"":                                     true,
		"sharding.herald.dev/key in (shard1)":  true,
		"!sharding.herald.dev/key":             true,
		"sharding.herald.dev/key notin (a, b)": true,
		"sharding.herald.dev/key in (unclosed": false,
		"=value":                               false,
	} {
		o := DefaultOptions()
		o.Manager.WatchLabelSelector = sel
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--watch-label-selector %q: %v", sel, err)
		}
	}
	o := DefaultOptions()
	o.Manager.LeaderElectionID = ""
	if o.Validate() == nil {
		t.Error("an empty --leader-election-id was accepted")
	}
}

// A named shard with leader election needs a lease of its own; the
// controller of unlabelled objects keeps the default one.
func TestNamedShardNeedsItsOwnLease(t *testing.T) {
	for _, tc := range []struct {
		selector, id string
		ok           bool
	}{
		{"", DefaultLeaderElectionID, true},
		{"!sharding.herald.dev/key", DefaultLeaderElectionID, true},
		{"sharding.herald.dev/key notin (a)", DefaultLeaderElectionID, true},
		{"sharding.herald.dev/key=a", DefaultLeaderElectionID, false},
		{"sharding.herald.dev/key in (a, b)", DefaultLeaderElectionID, false},
		{"sharding.herald.dev/key", DefaultLeaderElectionID, false},
		{"sharding.herald.dev/key=a", "herald-shard-a", true},
		{"team=a", DefaultLeaderElectionID, true},
	} {
		o := DefaultOptions()
		o.Manager.LeaderElection = true
		o.Manager.WatchLabelSelector, o.Manager.LeaderElectionID = tc.selector, tc.id
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("selector %q, lease %q: %v", tc.selector, tc.id, err)
		}
	}
}

// Only the kinds that carry a shard's work are filtered; what every shard
// reads is cached whole.
func TestShardCacheFiltersOnlyShardedKinds(t *testing.T) {
	if opts := ShardCacheOptions(nil); len(opts.ByObject) != 1 {
		t.Errorf("an unsharded cache filters %d kinds, want only the Event transform", len(opts.ByObject))
	}
	sel := labels.SelectorFromSet(labels.Set{"sharding.herald.dev/key": "a"})
	opts := ShardCacheOptions(sel)
	filtered := 0
	for obj, by := range opts.ByObject {
		if by.Label != nil {
			filtered++
			if by.Label.String() != sel.String() {
				t.Errorf("%T filtered by %q, want %q", obj, by.Label, sel)
			}
		}
	}
	if filtered != len(ShardedKinds()) {
		t.Errorf("%d kinds filtered, want %d", filtered, len(ShardedKinds()))
	}
}
