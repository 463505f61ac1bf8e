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

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// FetchStatus reads the link list from a running `dwnsync run` at addr (host:port or URL).
func FetchStatus(ctx context.Context, addr string) (*v1alpha1.ReplicationLinkList, error) {
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url = strings.TrimRight(url, "/") + StatusPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no dwnsync run answers at %s (start one, or pass --addr): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	list := &v1alpha1.ReplicationLinkList{}
	if err := json.NewDecoder(resp.Body).Decode(list); err != nil {
		return nil, fmt.Errorf("GET %s: not a link list: %w", url, err)
	}
	return list, nil
}

// PrintTable prints links like `kubectl get replicationlinks -o wide` (with a NAMESPACE column
// when they span namespaces, like -A; empty cells stay empty, as kubectl prints them).
func PrintTable(w io.Writer, list *v1alpha1.ReplicationLinkList, now time.Time, wide bool) error {
	multiNS := false
	for _, l := range list.Items {
		if l.Namespace != list.Items[0].Namespace {
			multiNS = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := []string{"NAME", "TENANT", "ENDPOINT", "PROTOCOL", "STATUS", "RECONCILE", "CONNECTIVITY", "AGE"}
	if wide {
		head = append(head, "DIRECTION", "MODE", "DIALECT", "PULLED", "PUSHED", "READY")
	}
	if multiNS {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, l := range list.Items {
		s := l.Status
		row := []string{l.Name, l.Spec.Tenant, l.Spec.Endpoint, l.Spec.Protocol, string(s.Phase),
			strconv.FormatBool(s.NeedsReconcile), string(s.Connectivity), age(l.CreationTimestamp.Time, now)}
		if wide {
			ready := ""
			if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil {
				ready = c.Reason
			}
			row = append(row, string(l.Spec.Direction), string(l.Spec.Mode), s.Dialect,
				applied(s.Pull), applied(s.Push), ready)
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
