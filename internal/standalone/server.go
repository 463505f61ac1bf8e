package standalone

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// StatusPath serves the links and their status as a ReplicationLinkList (JSON).
const StatusPath = "/status"

func (rt *Runtime) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Unhealthy while checkpoints cannot be saved: replication goes on, but a restart
		// would resume from older checkpoints, and the volume needs a person.
		if h := rt.engine.LedgerHealth(); h.Failing {
			http.Error(w, fmt.Sprintf("the ledger cannot save checkpoints since %s: %s", h.Since.UTC().Format(time.RFC3339), h.LastError), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc(StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rt.List())
	})
	mux.HandleFunc(DeadLettersPath, rt.serveDeadLetters)
	mux.HandleFunc(DeadLettersPath+"/", rt.serveDeadLetters)
	return mux
}

func sortLinks(items []v1alpha1.ReplicationLink) {
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
}
