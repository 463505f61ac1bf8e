package main

import (
	"io"
	"strings"
	"testing"
)

// Mistakes in `dwnsync deadletters` arguments are refused before any request, saying what is
// expected.
func TestDeadLettersRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "want an action, one of [list retry clear]"},
		{[]string{"purge", "alice"}, "want an action, one of [list retry clear]"},
		{[]string{"list"}, "takes one LINK (NAME or NAMESPACE/NAME), got 0"},
		{[]string{"retry", "alice", "bob"}, "takes one LINK (NAME or NAMESPACE/NAME), got 2"},
		{[]string{"list", "alice", "-o", "yaml"}, `-o "yaml": want json`},
		{[]string{"list", "alice", "--cid", "bafy"}, "--cid narrows retry and clear"},
	} {
		err := runDeadLetters(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deadletters %v: %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
}
