package controllers_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// The dead-letter request on the real operator and engine, between two real servers: the
// dead letters the ledger holds show in the status; a retry annotation makes the engine forget
// them and reconcile (nothing is refused again), and the outcome is in the status and an Event.
func TestOperatorRetriesDeadLetters(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	local, remoteURL := servers[0].URL, servers[1].URL
	id, err := dwnserver.NewClient(t).NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	link := newLink(ns, "letters", id.DID, remoteURL, "letters-signer")

	// Dead letters an earlier run of the operator left in the ledger.
	stateDir := t.TempDir()
	store, err := ledger.Open(filepath.Join(stateDir, operator.LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.GetOrCreate(ledger.Record{Tenant: id.DID, LocalEndpoint: local, RemoteEndpoint: remoteURL, Scope: linkconfig.Scope(&link.Spec)})
	if err == nil {
		err = store.Update(rec.Key, func(r *ledger.Record) {
			r.AddDeadLetter(ledger.DeadLetter{CID: "bafyold1", Direction: linkstate.Push, Reason: "refused", At: time.Now()})
			r.AddDeadLetter(ledger.DeadLetter{CID: "bafyold2", Direction: linkstate.Pull, Reason: "refused", At: time.Now()})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	startOperator(t, ns, local, stateDir, &applyCounter{base: http.DefaultTransport.(*http.Transport).Clone()})
	ctx := context.Background()
	signer := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "letters-signer", Labels: map[string]string{controllers.SignerLabel: "true"}},
		Data: map[string][]byte{"did": []byte(id.DID), "privateJwk": id.PrivateJWK}}
	for _, obj := range []client.Object{signer, link} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	statusShows(t, ns, "letters", "the ledger's two dead letters in the status", func(s v1alpha1.ReplicationLinkStatus) bool {
		return s.DeadLetters == 2 && len(s.DeadLetterList) == 2 && s.DeadLetterList[0].CID == "bafyold1"
	})

	request(t, ns, "letters", "retry", "real-1")
	l := handled(t, ns, "letters", "real-1")
	if a := l.Status.LastDeadLetterAction; a.Action != "retry" || a.Count != 2 {
		t.Fatalf("retry outcome %+v", a)
	}
	eventNamed(t, ns, "letters", corev1.EventTypeNormal, "DeadLettersRetried", "bafyold2")
	statusShows(t, ns, "letters", "no dead letters left after the retry's reconcile", func(s v1alpha1.ReplicationLinkStatus) bool {
		return s.DeadLetters == 0 && len(s.DeadLetterList) == 0
	})
	waitLive(t, ns, "letters", 2*time.Minute)
}
