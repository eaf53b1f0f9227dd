package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Store for unit tests.
type Memory struct {
	mu      sync.Mutex
	objects map[string]memObject
}

type memObject struct {
	data []byte
	info Info
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{objects: map[string]memObject{}} }

// Put reads r whole, then makes it visible.
func (m *Memory) Put(ctx context.Context, key string, r io.Reader, contentType string) (Info, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ctxReader{ctx, r}); err != nil {
		return Info{}, fmt.Errorf("uploading %s: %w", key, err)
	}
	info := Info{Key: key, Size: int64(buf.Len()), ContentType: contentType, LastModified: time.Now()}
	m.mu.Lock()
	m.objects[key] = memObject{data: buf.Bytes(), info: info}
	m.mu.Unlock()
	return info, nil
}

// Get opens key.
func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return nil, Info{}, fmt.Errorf("downloading %s: %w", key, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(o.data)), o.info, nil
}

// Stat describes key.
func (m *Memory) Stat(ctx context.Context, key string) (Info, error) {
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return Info{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return o.info, nil
}

// Delete removes key.
func (m *Memory) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// List returns the keys under prefix, sorted.
func (m *Memory) List(ctx context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Ping always succeeds.
func (m *Memory) Ping(ctx context.Context) error { return nil }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Compose joins srcs into key, with S3's rules: every source exists, and all but the last hold
// at least MinComposePart bytes.
func (m *Memory) Compose(ctx context.Context, key string, srcs []string, contentType string) (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var buf bytes.Buffer
	for i, s := range srcs {
		o, ok := m.objects[s]
		if !ok {
			return Info{}, fmt.Errorf("composing %s: %s: %w", key, s, ErrNotFound)
		}
		if i < len(srcs)-1 && len(o.data) < MinComposePart {
			return Info{}, fmt.Errorf("composing %s: part %s holds %d bytes, under the %d a part needs", key, s, len(o.data), MinComposePart)
		}
		buf.Write(o.data)
	}
	info := Info{Key: key, Size: int64(buf.Len()), ContentType: contentType, LastModified: time.Now()}
	m.objects[key] = memObject{data: buf.Bytes(), info: info}
	return info, ctx.Err()
}
