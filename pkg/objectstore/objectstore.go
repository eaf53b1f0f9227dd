// Package objectstore stores export files. Store is the small interface the services use; Minio
// is the real adapter for any S3-compatible server (MinIO, versitygw), Memory an in-memory twin
// for unit tests, and objectstoretest one conformance suite run against both.
//
// Invariant: an object becomes visible only when Put returns nil. A Put that fails or whose
// context is cancelled leaves nothing behind under its key (the adapter aborts its multipart
// upload), so nobody ever downloads half a file.
package objectstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned for a missing object.
var ErrNotFound = errors.New("object not found")

// Info describes a stored object.
type Info struct {
	Key          string
	Size         int64
	ContentType  string
	LastModified time.Time
}

// Store is where export files live.
type Store interface {
	// Put streams r to key. Nothing is visible under key unless it returns nil.
	Put(ctx context.Context, key string, r io.Reader, contentType string) (Info, error)
	// Get opens key for reading.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes key.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
}

// Composer is implemented by stores that join objects server-side: Compose stores at key the
// objects at srcs one after the other (the one file of an export written in ranges), without
// the bytes passing through the caller. Every source but the last must hold at least
// MinComposePart bytes (S3's smallest multipart part). Nothing is visible under key unless it
// returns nil; the sources stay.
type Composer interface {
	Compose(ctx context.Context, key string, srcs []string, contentType string) (Info, error)
}

// MinComposePart is the least size of a Compose source but the last: S3's 5 MiB part minimum.
const MinComposePart = 5 << 20
