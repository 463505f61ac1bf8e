package standalone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// DeadLettersPath serves a link's dead letters: GET lists them; POST …/retry and …/clear act
// on them. The link is ?link=NAME or NAMESPACE/NAME; ?cid= (repeatable) narrows an action to
// some messages (default: all of the link's dead letters).
const DeadLettersPath = "/deadletters"

// DeadLetterActions are the verbs of `dwnsync deadletters`.
var DeadLetterActions = []string{"list", "retry", "clear"}

// DeadLettersReply is the JSON answer of DeadLettersPath: the link's dead letters (list), or
// the ones the action forgot (retry, clear).
type DeadLettersReply struct {
	Link        string              `json:"link"`
	Action      string              `json:"action"`
	DeadLetters []ledger.DeadLetter `json:"deadLetters"`
}

func (rt *Runtime) serveDeadLetters(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, DeadLettersPath), "/")
	if action == "" {
		action = "list"
	}
	if (action == "list") != (r.Method == http.MethodGet) || (action != "list" && r.Method != http.MethodPost) {
		http.Error(w, "GET "+DeadLettersPath+" lists; POST "+DeadLettersPath+"/retry or /clear acts", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Query().Get("link")
	key, err := rt.linkKey(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	cids := r.URL.Query()["cid"]
	var dls []ledger.DeadLetter
	switch action {
	case "list":
		dls, err = rt.engine.DeadLetters(key)
	case "retry":
		dls, err = rt.engine.RetryDeadLetters(key, cids)
	case "clear":
		dls, err = rt.engine.ClearDeadLetters(key, cids)
	default:
		http.Error(w, fmt.Sprintf("unknown action %q: want one of %v", action, DeadLetterActions), http.StatusNotFound)
		return
	}
	if errors.Is(err, syncer.ErrUnknownLink) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(DeadLettersReply{Link: name, Action: action, DeadLetters: dls})
}

// linkKey finds the ledger key of a running link by NAME or NAMESPACE/NAME.
func (rt *Runtime) linkKey(name string) (string, error) {
	if name == "" {
		return "", errors.New("no link: pass ?link=NAME or NAMESPACE/NAME")
	}
	ns, n, qualified := strings.Cut(name, "/")
	if !qualified {
		n = name
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var keys []string
	for key, a := range rt.links {
		if a.Object.Name == n && (!qualified || a.Object.Namespace == ns) {
			keys = append(keys, key)
		}
	}
	switch len(keys) {
	case 0:
		return "", fmt.Errorf("no running link %q (see dwnsync status)", name)
	case 1:
		return keys[0], nil
	}
	return "", fmt.Errorf("%d links are named %q: name it as NAMESPACE/NAME", len(keys), name)
}

// DeadLetterAction asks a running `dwnsync run` at addr to list, retry or clear a link's dead
// letters (cids narrows retry and clear), and returns the reply.
func DeadLetterAction(ctx context.Context, addr, action, link string, cids []string) (*DeadLettersReply, error) {
	method, path := http.MethodPost, DeadLettersPath+"/"+action
	if action == "list" {
		method, path = http.MethodGet, DeadLettersPath
	}
	reply := &DeadLettersReply{}
	q := url.Values{"link": {link}, "cid": cids}
	if err := callRun(ctx, addr, method, path+"?"+q.Encode(), reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// PrintDeadLetters prints a reply: the table of a list, or what retry or clear did.
func PrintDeadLetters(w io.Writer, r *DeadLettersReply, now time.Time) error {
	switch {
	case r.Action == "retry":
		fmt.Fprintf(w, "link %s: %d dead letter(s) retried (a reconcile runs now; one refused again shows up again)\n", r.Link, len(r.DeadLetters))
	case r.Action == "clear":
		fmt.Fprintf(w, "link %s: %d dead letter(s) cleared\n", r.Link, len(r.DeadLetters))
	case len(r.DeadLetters) == 0:
		_, err := fmt.Fprintf(w, "link %s has no dead letters\n", r.Link)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CID\tDIRECTION\tAGE\tREASON")
	for _, d := range r.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.CID, d.Direction, age(d.At, now), strings.Join(strings.Fields(d.Reason), " "))
	}
	return tw.Flush()
}
