// Package transfer is the data path between two dwn.Tenants: it orders messages so that
// dependencies go first, copies them with their data (streamed, never buffered whole beyond
// the inline size), verifies every CID before writing, resolves missing dependencies from the
// source, and reconciles two tenants by digest and diff.
package transfer

import (
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Permission grants are records at path "grant" of the permissions protocol; enbox and the
// TBD server name the protocol differently.
var permissionProtocols = map[string]bool{
	"https://identity.foundation/dwn/permissions": true,
	"https://tbd.website/dwn/permissions":         true,
}

// Item is an entry with what Inspect found in its message.
type Item struct {
	Entry dwn.Entry
	Info  msg.MessageInfo
}

// TopoSort orders items so that, within the batch, a protocol's configure precedes its records, a
// record's initial write precedes its children, updates and deletes, and a grant precedes the
// messages that invoke it (docs/protocol-notes.md#dependency-order). Kahn's algorithm with a FIFO
// queue seeded in input order keeps the sort stable; items caught in a cycle follow in input order.
func TopoSort(items []Item) []Item {
	if len(items) <= 1 {
		return items
	}
	infos := make([]msg.MessageInfo, len(items))
	for i, it := range items {
		infos[i] = it.Info
	}
	out := make([]Item, 0, len(items))
	order, _ := topoOrder(infos)
	for _, i := range order {
		out = append(out, items[i])
	}
	return out
}

// topoOrder returns the indexes of infos in dependency order (see TopoSort), and each item's
// level: 0 for items with no dependency in the batch, otherwise one more than the highest
// level among its dependencies. Items of one level do not depend on each other, so they may
// be applied concurrently once the levels below are done. Items left in a cycle get a level of
// their own after all others.
func topoOrder(items []msg.MessageInfo) (order []int, level []int) {
	n := len(items)
	dependents, inDegree := dependencyGraph(items)

	out := make([]int, 0, n)
	level = make([]int, n)
	maxLevel := 0
	placed := make([]bool, n)
	queue := make([]int, 0, n)
	for i := range items {
		if inDegree[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		out = append(out, i)
		placed[i] = true
		maxLevel = max(maxLevel, level[i])
		for _, d := range dependents[i] {
			level[d] = max(level[d], level[i]+1)
			inDegree[d]--
			if inDegree[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	for i := range items {
		if !placed[i] {
			out = append(out, i)
			level[i] = maxLevel + 1 // a cycle: one at a time, in input order
			maxLevel++
		}
	}
	return out, level
}

// dependencyGraph returns, for each item, the items of the batch that depend on it (in input
// order) and how many items of the batch it depends on.
func dependencyGraph(items []msg.MessageInfo) (dependents [][]int, inDegree []int) {
	n := len(items)
	configures := map[string]int{}    // protocol -> last configure in the batch
	initialWrites := map[string]int{} // recordId -> its initial write
	grants := map[string]int{}        // grant recordId -> its initial write
	for i, info := range items {
		switch {
		case info.Kind() == "ProtocolsConfigure" && info.ConfiguredProtocol != "":
			configures[info.ConfiguredProtocol] = i
		case info.Kind() == "RecordsWrite" && info.IsInitialWrite && info.RecordID != "":
			initialWrites[info.RecordID] = i
			if permissionProtocols[info.Protocol] && info.ProtocolPath == "grant" {
				grants[info.RecordID] = i
			}
		}
	}

	dependents = make([][]int, n)
	inDegree = make([]int, n)
	seen := map[[2]int]bool{}
	edge := func(from, to int) {
		if from == to || seen[[2]int{from, to}] {
			return
		}
		seen[[2]int{from, to}] = true
		dependents[from] = append(dependents[from], to)
		inDegree[to]++
	}
	for i, info := range items {
		if info.Interface == "Records" {
			if c, ok := configures[info.Protocol]; ok && info.Protocol != "" {
				edge(c, i)
			}
			if p, ok := initialWrites[info.ParentID]; ok && info.ParentID != "" {
				edge(p, i)
			}
			nonInitialWrite := info.Kind() == "RecordsWrite" && !info.IsInitialWrite
			if w, ok := initialWrites[info.RecordID]; ok && info.RecordID != "" && (nonInitialWrite || info.Kind() == "RecordsDelete") {
				edge(w, i)
			}
		}
		if g, ok := grants[info.PermissionGrantID]; ok && info.PermissionGrantID != "" {
			edge(g, i)
		}
	}
	// Dependents are appended while scanning in input order, so each list is already sorted.
	return dependents, inDegree
}
