package status

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// DeadLetterList is status.deadLetterList of a link's dead letters (oldest first, as the
// ledger keeps them): the newest v1alpha1.MaxDeadLetterList of them, oldest first. The times are
// cut to seconds, as the API server stores them, so an unchanged list compares equal.
func DeadLetterList(ds []ledger.DeadLetter) []v1alpha1.DeadLetterEntry {
	if len(ds) == 0 {
		return nil
	}
	ds = ds[max(0, len(ds)-v1alpha1.MaxDeadLetterList):]
	out := make([]v1alpha1.DeadLetterEntry, len(ds))
	for i, d := range ds {
		out[i] = v1alpha1.DeadLetterEntry{CID: d.CID, Direction: d.Direction.String(), Reason: d.Reason,
			Since: metav1.NewTime(d.At.UTC().Truncate(time.Second))}
	}
	return out
}
