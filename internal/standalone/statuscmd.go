package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/sharding"
	"github.com/dwnsync/dwnsync/internal/status"
)

// FetchStatus reads the link list from a running `dwnsync run` at addr (host:port or URL).
func FetchStatus(ctx context.Context, addr string) (*v1alpha1.ReplicationLinkList, error) {
	list := &v1alpha1.ReplicationLinkList{}
	if err := callRun(ctx, addr, http.MethodGet, StatusPath, list); err != nil {
		return nil, err
	}
	return list, nil
}

// callRun sends a request to a running `dwnsync run` at addr (host:port or URL) and decodes its
// JSON answer into out.
func callRun(ctx context.Context, addr, method, pathAndQuery string, out any) error {
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url = strings.TrimRight(url, "/") + pathAndQuery
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no dwnsync run answers at %s (start one, or pass --addr): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: not the JSON expected: %w", method, url, err)
	}
	return nil
}

// Column names of PrintTable: the CRD's printer columns in their order (a test keeps them in
// step), Wide adding the priority-1 ones and LAST ERROR.
var (
	Columns     = []string{"NAME", "STATUS", "READY", "RECONCILE", "PROGRESS", "LAST CONVERGED", "AGE"}
	WideColumns = []string{"CONNECTIVITY", "DEAD LETTERS", "PULLED", "PUSHED", "DIRECTION", "MODE", "DIALECT", "ENDPOINT", "PROTOCOL", "TENANT", "SHARD", "LAST ERROR"}
)

// PrintTable prints links like `kubectl get replicationlinks` (wide: `-o wide`), with a
// NAMESPACE column when they span namespaces, like -A. Empty cells stay empty, as kubectl
// prints them; the narrow view fits 120 columns whatever the tenant.
func PrintTable(w io.Writer, list *v1alpha1.ReplicationLinkList, now time.Time, wide bool) error {
	multiNS := false
	for _, l := range list.Items {
		if l.Namespace != list.Items[0].Namespace {
			multiNS = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := Columns
	if wide {
		head = append(append([]string(nil), Columns...), WideColumns...)
	}
	if multiNS {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, l := range list.Items {
		row := narrowRow(l, now)
		if wide {
			row = append(row, wideRow(l)...)
		}
		if multiNS {
			row = append([]string{l.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printRefused(w, list)
}

// printRefused lists, under the table, the links that run no config of theirs (no phase) with
// why they are not ready: a refused link's reason and message.
func printRefused(w io.Writer, list *v1alpha1.ReplicationLinkList) error {
	header := false
	for _, l := range list.Items {
		c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
		if l.Status.Phase != "" || c == nil || c.Status == "True" {
			continue
		}
		if !header {
			if _, err := fmt.Fprintln(w, "\nNOT RUNNING:"); err != nil {
				return err
			}
			header = true
		}
		if _, err := fmt.Fprintf(w, "  %s/%s: %s: %s\n", l.Namespace, l.Name, c.Reason, c.Message); err != nil {
			return err
		}
	}
	return nil
}

func narrowRow(l v1alpha1.ReplicationLink, now time.Time) []string {
	s := l.Status
	ready := ""
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil {
		ready = c.Reason
	}
	progress, converged := "", ""
	if s.Progress != nil {
		progress = status.ProgressCell(s.Progress)
	}
	if s.LastConvergedTime != nil {
		converged = age(s.LastConvergedTime.Time, now)
	}
	return []string{l.Name, string(s.Phase), ready, strconv.FormatBool(s.NeedsReconcile), progress, converged,
		age(l.CreationTimestamp.Time, now)}
}

func wideRow(l v1alpha1.ReplicationLink) []string {
	s := l.Status
	// A table cell is one line: a multi-line error would break the columns.
	lastErr := strings.Join(strings.Fields(s.LastError), " ")
	return []string{string(s.Connectivity), strconv.Itoa(int(s.DeadLetters)), applied(s.Pull), applied(s.Push),
		string(l.Spec.Direction), string(l.Spec.Mode), s.Dialect, l.Spec.Endpoint, l.Spec.Protocol, l.Spec.Tenant,
		l.Labels[sharding.OwnerLabel], lastErr}
}

// PrintLinks prints list in a kubectl output format: "" (the narrow table), wide, yaml or json.
func PrintLinks(w io.Writer, list *v1alpha1.ReplicationLinkList, now time.Time, output string) error {
	switch output {
	case "", "table":
		return PrintTable(w, list, now, false)
	case "wide":
		return PrintTable(w, list, now, true)
	case "json":
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(list)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("-o %q: want wide, yaml or json (or nothing, for the table)", output)
}

func applied(d *v1alpha1.DirectionStatus) string {
	if d == nil {
		return ""
	}
	return strconv.FormatInt(d.Applied, 10)
}

func age(created, now time.Time) string {
	if created.IsZero() {
		return ""
	}
	return duration.HumanDuration(now.Sub(created))
}
