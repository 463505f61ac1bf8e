package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// labelHistory records, from a watch on the API server, every owner/drain label state each link
// of a namespace passes through ("owner>drain"), repeats left out.
type labelHistory struct {
	mu     sync.Mutex
	states map[string][]string
}

func watchLabels(t *testing.T, ns string) *labelHistory {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &v1alpha1.ReplicationLinkList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	h := &labelHistory{states: map[string][]string{}}
	go func() {
		for ev := range w.ResultChan() {
			l, ok := ev.Object.(*v1alpha1.ReplicationLink)
			if !ok {
				continue
			}
			state := l.Labels[sharding.OwnerLabel] + ">" + l.Labels[sharding.DrainLabel]
			h.mu.Lock()
			if seen := h.states[l.Name]; len(seen) == 0 || seen[len(seen)-1] != state {
				h.states[l.Name] = append(seen, state)
			}
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *labelHistory) of(name string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.states[name])
}

// A moved link is never unassigned: its old owner stops it, then relabels it for the shard the
// drain names in one patch. So, as a watch on the API server sees it, every moved link goes
// owner=old → old, draining toward new → owner=new, and no other link's labels change; the
// trace shows no link ran on two shards.
func TestShardMoveHandsOnWithoutUnassigning(t *testing.T) {
	r := newRing(t)
	r.join("dwnsync-0")
	r.join("dwnsync-1")
	keys := r.createLinks(24)
	before := r.settled(keys, "dwnsync-0", "dwnsync-1")
	h := watchLabels(t, r.ns)
	eventually(t, time.Minute, "the watch's first view of every link", func() (bool, string) {
		for name := range keys {
			if len(h.of(name)) == 0 {
				return false, name + " not seen yet"
			}
		}
		return true, ""
	})
	r.join("dwnsync-2")
	after := r.settled(keys, "dwnsync-0", "dwnsync-1", "dwnsync-2")
	moved := 0
	for name := range keys {
		want := []string{before[name] + ">"}
		if after[name] != before[name] {
			moved++
			want = append(want, before[name]+">"+after[name], after[name]+">")
		}
		// The watch may deliver the last change after the API server's list showed it.
		var got []string
		eventually(t, time.Minute, name+"'s last state in the watch", func() (bool, string) {
			got = h.of(name)
			return got[len(got)-1] == after[name]+">", fmt.Sprintf("%v", got)
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s went %v, want %v", name, got, want)
		}
	}
	if moved == 0 {
		t.Fatal("no link moved to the joining shard")
	}
	t.Logf("%d of %d links moved, each from its old owner straight to the new", moved, len(keys))
}
