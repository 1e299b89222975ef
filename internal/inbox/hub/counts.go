package hub

import (
	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

// tally is one user's counts, kept up to date as items show, hide, snooze
// and wake, so that counting costs the number of the user's namespaces,
// categories and types rather than of their items.
type tally struct {
	byNamespace map[string]*nsTally
}

// nsTally counts one user's items in one namespace.
type nsTally struct {
	all        inboxv1.InboxCountSummary
	byCategory map[string]*inboxv1.InboxCountSummary
	byType     map[string]*inboxv1.InboxCountSummary
}

func (h *Hub) tallyLocked(user string) *tally {
	t := h.tallies[user]
	if t == nil {
		t = &tally{byNamespace: map[string]*nsTally{}}
		h.tallies[user] = t
	}
	return t
}

// pruneTallyLocked forgets a user whose inbox is empty, so that users who
// come and go do not accumulate.
func (h *Hub) pruneTallyLocked(user string) {
	if t := h.tallies[user]; t != nil && len(t.byNamespace) == 0 {
		delete(h.tallies, user)
	}
}

func (t *tally) ns(namespace string) *nsTally {
	n := t.byNamespace[namespace]
	if n == nil {
		n = &nsTally{byCategory: map[string]*inboxv1.InboxCountSummary{}, byType: map[string]*inboxv1.InboxCountSummary{}}
		t.byNamespace[namespace] = n
	}
	return n
}

// add counts a visible item in (sign 1) or out (sign -1).
func (t *tally) add(it *inboxv1.InboxItem, sign int32) {
	n := t.ns(it.Namespace)
	apply := func(s *inboxv1.InboxCountSummary) {
		if it.Status.Archived {
			s.Archived += sign
			return
		}
		s.Total += sign
		if !it.Status.Read {
			s.Unread += sign
		}
		if !it.Status.Seen {
			s.Unseen += sign
		}
	}
	n.update(it.Spec.Category, it.Spec.Type, apply)
	t.prune(it.Namespace)
}

// addSnoozed counts a snoozed item in or out.
func (t *tally) addSnoozed(s *snoozedItem, sign int32) {
	n := t.ns(s.namespace)
	n.update(s.category, s.typ, func(c *inboxv1.InboxCountSummary) { c.Snoozed += sign })
	t.prune(s.namespace)
}

func (n *nsTally) update(category, typ string, apply func(*inboxv1.InboxCountSummary)) {
	apply(&n.all)
	for _, m := range []struct {
		key string
		to  map[string]*inboxv1.InboxCountSummary
	}{{category, n.byCategory}, {typ, n.byType}} {
		c := m.to[m.key]
		if c == nil {
			c = &inboxv1.InboxCountSummary{}
			m.to[m.key] = c
		}
		apply(c)
		if *c == (inboxv1.InboxCountSummary{}) {
			delete(m.to, m.key)
		}
	}
}

func (t *tally) prune(namespace string) {
	if n := t.byNamespace[namespace]; n != nil && n.all == (inboxv1.InboxCountSummary{}) {
		delete(t.byNamespace, namespace)
	}
}

// Counts returns user's counts in namespace, or in all their namespaces
// when namespace is empty, and the resourceVersion they reflect. Its name
// is the namespace, or inboxv1.InboxCountsAll.
func (h *Hub) Counts(user, namespace string) (*inboxv1.InboxCounts, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.synced {
		return nil, 0, ErrNotSynced
	}
	out := &inboxv1.InboxCounts{}
	out.APIVersion, out.Kind = inboxv1.GroupVersion.String(), "InboxCounts"
	out.Name = namespace
	if namespace == "" {
		out.Name = inboxv1.InboxCountsAll
	}
	t := h.tallies[user]
	if t == nil {
		return out, h.head, nil
	}
	sum := func(to *map[string]inboxv1.InboxCountSummary, key string, c inboxv1.InboxCountSummary) {
		if *to == nil {
			*to = map[string]inboxv1.InboxCountSummary{}
		}
		s := (*to)[key]
		s.Total += c.Total
		s.Unread += c.Unread
		s.Unseen += c.Unseen
		s.Archived += c.Archived
		s.Snoozed += c.Snoozed
		(*to)[key] = s
	}
	for ns, n := range t.byNamespace {
		if namespace != "" && ns != namespace {
			continue
		}
		c := n.all
		out.Counts.Total += c.Total
		out.Counts.Unread += c.Unread
		out.Counts.Unseen += c.Unseen
		out.Counts.Archived += c.Archived
		out.Counts.Snoozed += c.Snoozed
		if namespace == "" {
			sum(&out.ByNamespace, ns, c)
		}
		for k, c := range n.byCategory {
			sum(&out.ByCategory, k, *c)
		}
		for k, c := range n.byType {
			sum(&out.ByType, k, *c)
		}
	}
	return out, h.head, nil
}
