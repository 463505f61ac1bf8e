package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// clusterDeadLetters is `dwnsync deadletters` against a cluster: list reads the link's
// status.deadLetterList; retry and clear set the dwnsync.io/dead-letters annotation and wait
// until the operator reports the request handled in status.lastDeadLetterAction.
type clusterDeadLetters struct {
	c       client.Client
	link    types.NamespacedName
	out     io.Writer
	json    bool
	timeout time.Duration
}

func (d *clusterDeadLetters) run(ctx context.Context, action string, cids []string) error {
	if action == "list" {
		return d.list(ctx)
	}
	return d.request(ctx, action, cids)
}

func (d *clusterDeadLetters) list(ctx context.Context) error {
	link, err := d.get(ctx)
	if err != nil {
		return err
	}
	reply := &standalone.DeadLettersReply{Link: d.link.String(), Action: "list", DeadLetters: []ledger.DeadLetter{}}
	for _, e := range link.Status.DeadLetterList {
		dir := linkstate.Pull
		if e.Direction == linkstate.Push.String() {
			dir = linkstate.Push
		}
		reply.DeadLetters = append(reply.DeadLetters, ledger.DeadLetter{CID: e.CID, Direction: dir, Reason: e.Reason, At: e.Since.Time})
	}
	if d.json {
		return writeJSON(d.out, struct {
			*standalone.DeadLettersReply
			Total int32 `json:"total"`
		}{reply, link.Status.DeadLetters})
	}
	if err := standalone.PrintDeadLetters(d.out, reply, time.Now()); err != nil {
		return err
	}
	if more := int(link.Status.DeadLetters) - len(reply.DeadLetters); more > 0 {
		_, err = fmt.Fprintf(d.out, "(%d older dead letter(s) not shown: the status lists the newest %d of %d)\n", more, len(reply.DeadLetters), link.Status.DeadLetters)
	}
	return err
}

// request annotates the link and waits for the operator's outcome.
func (d *clusterDeadLetters) request(ctx context.Context, action string, cids []string) error {
	if _, err := d.get(ctx); err != nil {
		return err
	}
	id, err := requestID()
	if err != nil {
		return err
	}
	value := action
	if len(cids) > 0 {
		value += ":" + strings.Join(cids, ",")
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		v1alpha1.AnnotationDeadLetters: value, v1alpha1.AnnotationDeadLettersRequest: id}}})
	stub := &v1alpha1.ReplicationLink{}
	stub.Namespace, stub.Name = d.link.Namespace, d.link.Name
	if err := d.c.Patch(ctx, stub, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("setting annotation %s on ReplicationLink %s needs the patch verb on replicationlinks.dwnsync.io: %w", v1alpha1.AnnotationDeadLetters, d.link, err)
		}
		return fmt.Errorf("setting annotation %s on ReplicationLink %s: %w", v1alpha1.AnnotationDeadLetters, d.link, err)
	}
	var outcome *v1alpha1.DeadLetterAction
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, d.timeout, true, func(ctx context.Context) (bool, error) {
		link, err := d.get(ctx)
		if err != nil {
			return false, err
		}
		if a := link.Status.LastDeadLetterAction; a != nil && a.RequestID == id {
			outcome = a
			return true, nil
		}
		return false, nil
	})
	if outcome == nil {
		return fmt.Errorf("the operator did not handle request %s (%s=%s) on %s within %s (%v): is the dwnsync operator running and watching namespace %s, and is the link running (kubectl get rl -n %s %s)? The annotation stays set and the operator acts on it when the link runs; its outcome will be in status.lastDeadLetterAction",
			id, v1alpha1.AnnotationDeadLetters, value, d.link, d.timeout, err, d.link.Namespace, d.link.Namespace, d.link.Name)
	}
	if d.json {
		return writeJSON(d.out, outcome)
	}
	if outcome.Action == v1alpha1.DeadLetterActionRejected {
		return fmt.Errorf("the operator rejected request %s on %s: %s", id, d.link, outcome.Message)
	}
	_, err = fmt.Fprintf(d.out, "link %s: %s (request %s)\n", d.link, outcome.Message, id)
	return err
}

func (d *clusterDeadLetters) get(ctx context.Context) (*v1alpha1.ReplicationLink, error) {
	link := &v1alpha1.ReplicationLink{}
	if err := d.c.Get(ctx, d.link, link); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no ReplicationLink %s (kubectl get replicationlinks -n %s lists them)", d.link, d.link.Namespace)
		}
		return nil, fmt.Errorf("reading ReplicationLink %s: %w", d.link, err)
	}
	return link, nil
}

// linkName reads LINK, NAME or NAMESPACE/NAME, in namespace ns by default.
func linkName(arg, ns string) types.NamespacedName {
	if n, name, ok := strings.Cut(arg, "/"); ok {
		return types.NamespacedName{Namespace: n, Name: name}
	}
	return types.NamespacedName{Namespace: ns, Name: arg}
}

func requestID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
