package dwnserver

import (
	"os"
	"strings"
)

// tailBytes caps how much of a log tailFile reads: the tail is for humans reading a failure.
const tailBytes = 64 << 10

// tailFile returns the last n lines of the file at path (or why it could not be read).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	offset := max(info.Size()-tailBytes, 0)
	buf := make([]byte, info.Size()-offset)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	return lastLines(string(buf), n)
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
