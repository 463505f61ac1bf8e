package shiptest

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	_ "github.com/dwnsync/dwnsync/controllers" // registers the operator's own metrics
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

var metricName = regexp.MustCompile(`\bdwnsync_[a-z0-9_]+`)

// Every metric the chart's PrometheusRule and Grafana dashboard query is one the operator
// serves (the manager's registry with an engine on it): renaming a metric fails here.
func TestChartAlertsAndDashboardQueryRealMetrics(t *testing.T) {
	rendered, err := helmTemplate(t, "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, rendered)
	}
	exprs := map[string][]string{} // source → expressions
	for _, doc := range strings.Split(rendered, "\n---\n") {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Groups []struct {
					Rules []struct {
						Alert string `json:"alert"`
						Expr  string `json:"expr"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"spec"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("rendered document: %v\n%s", err, doc)
		}
		switch {
		case obj.Kind == "PrometheusRule":
			for _, g := range obj.Spec.Groups {
				for _, r := range g.Rules {
					exprs["alert "+r.Alert] = append(exprs["alert "+r.Alert], r.Expr)
				}
			}
		case obj.Kind == "ConfigMap" && obj.Data["dwnsync.json"] != "":
			for title, qs := range dashboardQueries(t, obj.Data["dwnsync.json"]) {
				exprs["panel "+title] = qs
			}
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("found %d alerts and panels in the rendered chart, want the 4 alerts and the dashboard's panels", len(exprs))
	}

	reg := metrics.Registry // the operator's registry (internal/operator)
	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := syncer.New(syncer.Options{Ledger: store, Pool: dialect.NewPool(dialect.Options{}), Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for source, qs := range exprs {
		for _, q := range qs {
			names := metricName.FindAllString(q, -1)
			if len(names) == 0 {
				t.Errorf("%s: query names no dwnsync metric: %s", source, q)
			}
			for _, name := range names {
				if !served(reg, name) {
					t.Errorf("%s queries %s, which the operator does not serve: %s", source, name, q)
				}
			}
		}
	}
}

// served reports whether reg has a metric family name (a histogram's _bucket, _sum and _count
// series count as its own). Registering a probe under the name fails exactly when the name is
// taken, whether or not the family has series yet.
func served(reg prometheus.Registerer, name string) bool {
	for _, n := range []string{name, strings.TrimSuffix(name, "_bucket"), strings.TrimSuffix(name, "_sum"), strings.TrimSuffix(name, "_count")} {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: "probe"})
		if err := reg.Register(probe); err != nil {
			return true
		}
		reg.Unregister(probe)
	}
	return false
}

// dashboardQueries returns each panel's query expressions, and the template variables'.
func dashboardQueries(t *testing.T, raw string) map[string][]string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			out["variable "+v.Name] = append(out["variable "+v.Name], q)
		}
	}
	return out
}
