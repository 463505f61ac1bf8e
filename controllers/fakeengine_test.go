package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// fakeEngine stands in for *syncer.Engine in the controller tests that are about the
// reconciler itself: it records what it is asked and reports what the test tells it to.
type fakeEngine struct {
	mu      sync.Mutex
	configs map[string]syncer.LinkConfig
	snaps   map[string]syncer.LinkStatus
	applies map[string]int
	owners  map[string]types.UID // the ledger record's owner
	removed []string
	// removeErr, when set, fails Remove (counted in removeAttempts) as an engine that cannot
	// stop a link right now would.
	removeErr      error
	removeAttempts int
	events         chan syncer.Event
	lost           chan struct{} // signalled when publishLocked drops an event, as the engine's
	// deadLetters is each key's ledger dead letters; deadLetterCalls what was asked of them.
	deadLetters     map[string][]ledger.DeadLetter
	deadLetterCalls []string
}

func newFakeEngine() *fakeEngine { return newFakeEngineBuffered(4096) }

// newFakeEngineBuffered is a fake engine whose event channel holds n events.
func newFakeEngineBuffered(n int) *fakeEngine {
	return &fakeEngine{configs: map[string]syncer.LinkConfig{}, snaps: map[string]syncer.LinkStatus{},
		applies: map[string]int{}, owners: map[string]types.UID{}, events: make(chan syncer.Event, n),
		lost: make(chan struct{}, 1), deadLetters: map[string][]ledger.DeadLetter{}}
}

func (f *fakeEngine) EventsLost() <-chan struct{} { return f.lost }

// Apply keeps the engine's rule of one owner per key: another owner's claim is refused with a
// *syncer.DuplicateLinkError unless it supersedes the holder.
func (f *fakeEngine) Apply(cfg syncer.LinkConfig) (string, error) {
	key, err := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	owner := types.UID(cfg.Owner)
	if holder := f.owners[key]; holder != "" && holder != owner && string(holder) != cfg.Supersedes {
		return "", &syncer.DuplicateLinkError{Key: key, Owner: string(holder)}
	}
	// As the engine: the same configuration again leaves the running link alone (the
	// reconciler applies on every pass and counts on this).
	if old, running := f.configs[key]; running && f.owners[key] == owner && old.Same(cfg) {
		return key, nil
	}
	f.applies[key]++
	f.configs[key] = cfg
	f.owners[key] = owner
	s, ok := f.snaps[key]
	if !ok || s.Name != cfg.Name {
		s = syncer.LinkStatus{Key: key, Name: cfg.Name, Phase: "initializing", Connectivity: "unknown", NeedsReconcile: true}
	}
	s.Owner = cfg.Owner
	switch {
	case cfg.Suspend:
		s.Phase = "paused"
	case s.Phase == "paused":
		s.Phase = "initializing"
	}
	f.snaps[key] = s
	f.publishLocked(syncer.Event{Key: key, Name: cfg.Name, Type: "link:status-change", To: string(s.Phase)})
	return key, nil
}

func (f *fakeEngine) Release(key, owner string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeAttempts++
	if f.removeErr != nil {
		return false, f.removeErr
	}
	if o, ok := f.owners[key]; ok && o != "" && string(o) != owner {
		return false, nil
	}
	delete(f.configs, key)
	delete(f.snaps, key)
	delete(f.owners, key)
	f.removed = append(f.removed, key)
	return true, nil
}

// Owner is the owner the fake's ledger record names.
func (f *fakeEngine) Owner(key string) types.UID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owners[key]
}

func (f *fakeEngine) Snapshots() []syncer.LinkStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []syncer.LinkStatus
	for _, s := range f.snaps {
		out = append(out, s)
	}
	return out
}

func (f *fakeEngine) Snapshot(key string) (syncer.LinkStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.snaps[key]
	return s, ok
}

func (f *fakeEngine) Events() <-chan syncer.Event { return f.events }

// update changes a link's snapshot and publishes an event, as the engine does on transitions.
func (f *fakeEngine) update(key, eventType string, fn func(*syncer.LinkStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.snaps[key]
	if !ok {
		panic(fmt.Sprintf("fake engine: no link %s", key))
	}
	from := s.Phase
	fn(&s)
	f.snaps[key] = s
	f.publishLocked(syncer.Event{Key: key, Name: s.Name, Type: eventType, From: string(from), To: string(s.Phase)})
}

// publishLocked never blocks, like the engine: when the buffer is full the oldest event goes,
// and lost is signalled.
func (f *fakeEngine) publishLocked(ev syncer.Event) {
	for {
		select {
		case f.events <- ev:
			return
		default:
		}
		select {
		case <-f.events:
			select {
			case f.lost <- struct{}{}:
			default:
			}
		default:
		}
	}
}

func (f *fakeEngine) config(key string) (syncer.LinkConfig, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configs[key], f.applies[key]
}

// failRemoves makes Remove fail with err (nil: succeed again).
func (f *fakeEngine) failRemoves(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeErr = err
}

func (f *fakeEngine) removeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removeAttempts
}

func (f *fakeEngine) removedKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removed...)
}

func (f *fakeEngine) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.snaps {
		out = append(out, k)
	}
	return out
}

// publish sends an engine event without changing the snapshot.
func (f *fakeEngine) publish(ev syncer.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishLocked(ev)
}

// seed makes the engine run key for the link name with owner recorded, as an engine left
// running by an earlier pass would.
func (f *fakeEngine) seed(key, name string, owner types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps[key] = syncer.LinkStatus{Key: key, Name: name, Owner: string(owner), Phase: "live", Connectivity: "online"}
	f.owners[key] = owner
}

// runner is the name of the link the engine runs key for ("" when none).
func (f *fakeEngine) runner(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snaps[key].Name
}

// addDeadLetters gives up on ds for key, as the engine does: the ledger keeps them, the
// snapshot counts them, and an event wakes the reconciler.
func (f *fakeEngine) addDeadLetters(key string, ds ...ledger.DeadLetter) {
	f.mu.Lock()
	f.deadLetters[key] = append(f.deadLetters[key], ds...)
	n := len(f.deadLetters[key])
	f.mu.Unlock()
	f.update(key, syncer.EventDeadLetter, func(s *syncer.LinkStatus) { s.DeadLetters = n })
}

func (f *fakeEngine) DeadLetters(key string) ([]ledger.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; !ok {
		return nil, syncer.ErrUnknownLink
	}
	return slices.Clone(f.deadLetters[key]), nil
}

func (f *fakeEngine) RetryDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	return f.dropDeadLetters("retry", key, cids)
}

func (f *fakeEngine) ClearDeadLetters(key string, cids []string) ([]ledger.DeadLetter, error) {
	return f.dropDeadLetters("clear", key, cids)
}

func (f *fakeEngine) dropDeadLetters(action, key string, cids []string) ([]ledger.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.snaps[key]
	if !ok {
		return nil, syncer.ErrUnknownLink
	}
	f.deadLetterCalls = append(f.deadLetterCalls, strings.TrimSpace(action+" "+strings.Join(cids, ",")))
	var kept, dropped []ledger.DeadLetter
	for _, d := range f.deadLetters[key] {
		if len(cids) == 0 || slices.Contains(cids, d.CID) {
			dropped = append(dropped, d)
		} else {
			kept = append(kept, d)
		}
	}
	f.deadLetters[key] = kept
	s.DeadLetters = len(kept)
	f.snaps[key] = s
	return dropped, nil
}

// deadLetterRequests are the retry and clear calls so far ("retry cid1,cid2", "clear").
func (f *fakeEngine) deadLetterRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deadLetterCalls)
}
