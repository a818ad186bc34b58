package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// logBuffer is the process's stdout and stderr, written to a file as they come; it wakes the
// waiters of WaitForLog at each write. The text stays in the file only, so that a long-running
// server (the bench's) costs no memory for its log. With Config.LogDirect the process writes to
// the file itself, Write is not called, and the waiters poll the file's size.
type logBuffer struct {
	path   string
	direct bool // the process writes to file directly

	mu    sync.Mutex
	file  *os.File
	size  int64         // bytes written so far
	grew  chan struct{} // closed and replaced at each write, and when the process ends
	ended bool          // the process has exited and its output is all in the file
}

func newLogBuffer(path string) (*logBuffer, error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logBuffer{path: path, file: file, grew: make(chan struct{})}, nil
}

// Write appends p to the file; exec calls it from one goroutine at a time, since stdout and
// stderr share it.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.file.Write(p)
	b.size += int64(n)
	close(b.grew)
	b.grew = make(chan struct{})
	return n, err
}

// finish records that nothing more will be written.
func (b *logBuffer) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	b.file.Close()
	close(b.grew)
}

// String is everything written so far.
func (b *logBuffer) String() string {
	text, err := os.ReadFile(b.path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(text)
}

// errNoSuchLine is WaitForLog's answer when the process ended without writing the line.
var errNoSuchLine = errors.New("the server exited without logging such a line")

// waitFor returns the first whole line match accepts (the last line need not end in a newline
// once the process has ended), reading the file as it grows.
func (b *logBuffer) waitFor(ctx context.Context, match func(string) bool) (string, error) {
	r, err := os.Open(b.path)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var (
		read    int64
		partial []byte // the start of a line whose end is not written yet
	)
	for {
		b.mu.Lock()
		size, grew, ended := b.size, b.grew, b.ended
		b.mu.Unlock()
		var poll <-chan time.Time // nil, and so never ready, unless the process writes directly
		if b.direct {
			// The size is read after ended, so that once the process has ended it is the final one.
			info, err := r.Stat()
			if err != nil {
				return "", fmt.Errorf("stat %s: %w", b.path, err)
			}
			size, poll = info.Size(), time.After(pollInterval)
		}
		if size > read {
			more := make([]byte, size-read)
			if _, err := r.ReadAt(more, read); err != nil {
				return "", fmt.Errorf("read %s: %w", b.path, err)
			}
			read = size
			partial = append(partial, more...)
		}
		for {
			i := bytes.IndexByte(partial, '\n')
			if i < 0 {
				break
			}
			if line := string(partial[:i]); match(line) {
				return line, nil
			}
			partial = partial[i+1:]
		}
		if ended {
			if len(partial) > 0 && match(string(partial)) {
				return string(partial), nil
			}
			return "", errNoSuchLine
		}
		select {
		case <-grew:
		case <-poll:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// MessageIs matches the JSON log lines (GATEHOUSE_LOG_FORMAT=json) whose "msg" is msg.
func MessageIs(msg string) func(line string) bool {
	return func(line string) bool {
		var entry struct {
			Msg string `json:"msg"`
		}
		return json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == msg
	}
}
