// Package rbac proves the RBAC Herald ships: it applies config/default's
// ServiceAccounts, roles and bindings to a real kube-apiserver, runs the
// production binary's `herald controller`, `herald apiserver` and
// `herald receiver` as those ServiceAccounts (impersonated: the processes
// hold no other rights), and drives every feature through them. kube-apiserver's audit log records
// every request; any request of theirs that was refused fails the suite,
// named by verb, resource, namespace and name.
package rbac

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// auditPolicy records every request's metadata (who, what, the response
// code), nothing of bodies.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// auditEvent is the part of an audit.k8s.io/v1 Event this suite reads.
type auditEvent struct {
	Stage            string
	Verb             string
	RequestURI       string
	User             struct{ Username string }
	ImpersonatedUser *struct{ Username string }
	ObjectRef        *struct {
		Resource, Namespace, Name, APIGroup, Subresource string
	}
	ResponseStatus *struct {
		Code    int
		Message string
	}
}

// forbidden reads an audit log and returns, for each of users, the
// requests kube-apiserver refused with 403, one line each, in log order
// without repeats. A request counts as the user's when the user made it
// or was impersonated for it.
func forbidden(log io.Reader, users []string) ([]string, error) {
	var out []string
	s := bufio.NewScanner(log)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		var e auditEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if e.Stage != "ResponseComplete" || e.ResponseStatus == nil || e.ResponseStatus.Code != 403 {
			continue
		}
		who := e.User.Username
		if e.ImpersonatedUser != nil {
			who = e.ImpersonatedUser.Username
		}
		if !slices.Contains(users, who) {
			continue
		}
		what := e.RequestURI
		if r := e.ObjectRef; r != nil {
			resource := r.Resource
			if r.Subresource != "" {
				resource += "/" + r.Subresource
			}
			if r.APIGroup != "" {
				resource += "." + r.APIGroup
			}
			what = resource
			if r.Namespace != "" {
				what += " in namespace " + r.Namespace
			}
			if r.Name != "" {
				what += " named " + r.Name
			}
		}
		line := fmt.Sprintf("%s: %s %s (%s)", who, e.Verb, what, strings.TrimSpace(e.ResponseStatus.Message))
		if !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	return out, s.Err()
}
