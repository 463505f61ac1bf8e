package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/status"
)

// DeadLetterEngine is the engine's dead-letter API (*syncer.Engine's): the reconciler mirrors
// the dead letters into the status and acts on dwnsync.io/dead-letters requests with it. An
// engine without it leaves status.deadLetterList empty and rejects the requests.
type DeadLetterEngine interface {
	DeadLetters(key string) ([]ledger.DeadLetter, error)
	RetryDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error)
	ClearDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error)
}

// Event reasons of dead-letter requests.
const (
	ReasonDeadLettersRetried        = "DeadLettersRetried"
	ReasonDeadLettersCleared        = "DeadLettersCleared"
	ReasonDeadLetterRequestRejected = "DeadLetterRequestRejected"
)

// acceptedDeadLetterValues names the values of the annotation in messages.
const acceptedDeadLetterValues = `"retry", "clear", "retry:CID[,CID...]" or "clear:CID[,CID...]"`

// deadLetterList is status.deadLetterList of the link of key. The ledger is read only when the
// snapshot counts dead letters.
func (r *ReplicationLinkReconciler) deadLetterList(key string, count int) ([]v1alpha1.DeadLetterEntry, error) {
	eng, ok := r.Engine.(DeadLetterEngine)
	if !ok || count == 0 {
		return nil, nil
	}
	ds, err := eng.DeadLetters(key)
	if err != nil {
		return nil, err
	}
	return status.DeadLetterList(ds), nil
}

// handleDeadLetterRequest acts on the link's dwnsync.io/dead-letters annotation, if any: it
// retries or clears the dead letters, records an Event, removes the annotations and remembers the
// outcome for the status write that follows. A value it does not accept is rejected with a
// Warning Event and nothing is done.
func (r *ReplicationLinkReconciler) handleDeadLetterRequest(ctx context.Context, link *v1alpha1.ReplicationLink, key string) error {
	value, ok := link.Annotations[v1alpha1.AnnotationDeadLetters]
	if !ok {
		return nil
	}
	id := link.Annotations[v1alpha1.AnnotationDeadLettersRequest]
	if !r.handledDeadLetterRequest(link, id) {
		outcome, err := r.doDeadLetterRequest(link, key, value, id)
		if err != nil {
			return err // the annotation stays: the next pass tries again
		}
		r.mu.Lock()
		t := r.track(client.ObjectKeyFromObject(link))
		t.deadLetterAction, t.deadLetterRV = outcome, link.ResourceVersion
		r.mu.Unlock()
	}
	return r.removeDeadLetterRequest(ctx, link, value, id)
}

// handledDeadLetterRequest reports whether the request on link was handled already and the
// annotation seen is the cache lagging behind its removal: the same request id, or the same
// object version.
func (r *ReplicationLinkReconciler) handledDeadLetterRequest(link *v1alpha1.ReplicationLink, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.links[client.ObjectKeyFromObject(link)]
	if !ok || t.deadLetterAction == nil {
		return false
	}
	return (id != "" && id == t.deadLetterAction.RequestID) || link.ResourceVersion == t.deadLetterRV
}

// removeDeadLetterRequest removes the request's annotations if they still say what was handled:
// a newer request set meanwhile stays for the next pass, and one removed already is fine.
func (r *ReplicationLinkReconciler) removeDeadLetterRequest(ctx context.Context, link *v1alpha1.ReplicationLink, value, id string) error {
	path := func(k string) string {
		return "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
	}
	ops := []map[string]any{
		{"op": "test", "path": path(v1alpha1.AnnotationDeadLetters), "value": value},
		{"op": "remove", "path": path(v1alpha1.AnnotationDeadLetters)},
	}
	if _, ok := link.Annotations[v1alpha1.AnnotationDeadLettersRequest]; ok {
		ops = append(ops, map[string]any{"op": "test", "path": path(v1alpha1.AnnotationDeadLettersRequest), "value": id},
			map[string]any{"op": "remove", "path": path(v1alpha1.AnnotationDeadLettersRequest)})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	err = r.Client.Patch(ctx, link, client.RawPatch(types.JSONPatchType, body))
	if apierrors.IsInvalid(err) || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // removed already, or changed into a newer request (its own pass follows)
	}
	if err != nil {
		return fmt.Errorf("remove the %s annotation after handling it: %w", v1alpha1.AnnotationDeadLetters, err)
	}
	return nil
}

func (r *ReplicationLinkReconciler) doDeadLetterRequest(link *v1alpha1.ReplicationLink, key, value, id string) (*v1alpha1.DeadLetterAction, error) {
	outcome := &v1alpha1.DeadLetterAction{RequestID: id, Time: metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second))}
	action, cids, err := parseDeadLetterRequest(value)
	eng, supported := r.Engine.(DeadLetterEngine)
	if err == nil && !supported {
		err = fmt.Errorf("this operator's engine has no dead-letter API")
	}
	if err != nil {
		outcome.Action, outcome.Message = v1alpha1.DeadLetterActionRejected, err.Error()
		r.event(link, corev1.EventTypeWarning, ReasonDeadLetterRequestRejected, "DeadLetters", "nothing done: %s", err)
		return outcome, nil
	}
	do, reason, done := eng.RetryDeadLetters, ReasonDeadLettersRetried, "retried (a reconcile runs now; one refused again is a dead letter again)"
	if action == v1alpha1.DeadLetterActionClear {
		do, reason, done = eng.ClearDeadLetters, ReasonDeadLettersCleared, "cleared (forgotten without copying)"
	}
	dropped, err := do(key, cids)
	if err != nil {
		return nil, fmt.Errorf("%s the dead letters of %s: %w", action, key, err)
	}
	outcome.Action, outcome.Count = action, int32(len(dropped))
	outcome.Message = fmt.Sprintf("%d dead letter(s) %s", len(dropped), done)
	if len(cids) > 0 {
		outcome.Message += fmt.Sprintf(" of the %d CID(s) asked for", len(cids))
	}
	r.event(link, corev1.EventTypeNormal, reason, "DeadLetters", "%s%s", outcome.Message, requestNote(id, dropped))
	return outcome, nil
}

// parseDeadLetterRequest reads a dwnsync.io/dead-letters value.
func parseDeadLetterRequest(value string) (action string, cids []string, err error) {
	action, list, narrowed := strings.Cut(strings.TrimSpace(value), ":")
	if action != v1alpha1.DeadLetterActionRetry && action != v1alpha1.DeadLetterActionClear {
		return "", nil, fmt.Errorf("annotation %s=%q: want %s", v1alpha1.AnnotationDeadLetters, value, acceptedDeadLetterValues)
	}
	if !narrowed {
		return action, nil, nil
	}
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cids = append(cids, c)
		}
	}
	if len(cids) == 0 {
		return "", nil, fmt.Errorf("annotation %s=%q names no CID after the colon: want %s", v1alpha1.AnnotationDeadLetters, value, acceptedDeadLetterValues)
	}
	return action, cids, nil
}

func requestNote(id string, dropped []ledger.DeadLetter) string {
	var b strings.Builder
	for i, d := range dropped {
		if i == 5 {
			fmt.Fprintf(&b, " ... (%d more)", len(dropped)-i)
			break
		}
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %s", sep, d.Direction, d.CID)
	}
	if id != "" {
		fmt.Fprintf(&b, " (request %s)", id)
	}
	return b.String()
}

// withDeadLetters sets the dead-letter fields of next: the list of the link of key, and the
// outcome of the latest request (this reconciler's, or else the one already written).
func (r *ReplicationLinkReconciler) withDeadLetters(link *v1alpha1.ReplicationLink, key string, count int, cur, next *v1alpha1.ReplicationLinkStatus) error {
	list, err := r.deadLetterList(key, count)
	if err != nil {
		return err
	}
	next.DeadLetterList = list
	next.LastDeadLetterAction = cur.LastDeadLetterAction
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.links[client.ObjectKeyFromObject(link)]; ok && t.deadLetterAction != nil {
		next.LastDeadLetterAction = t.deadLetterAction.DeepCopy()
	}
	return nil
}
