package destination

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
)

// s3Sender puts files into a bucket under a prefix. An S3 PUT is atomic already (the object
// appears whole or not at all): no temporary name.
type s3Sender struct {
	store  *objectstore.Minio
	d      platform.Destination
	target string
}

func openS3(d platform.Destination, secrets Secrets) (*s3Sender, error) {
	access, err := secrets(d.AccessKeyRef)
	if err != nil {
		return nil, err
	}
	secret, err := secrets(d.SecretKeyRef)
	if err != nil {
		return nil, err
	}
	useTLS := d.UseTLS == nil || *d.UseTLS
	st, err := objectstore.NewMinio(objectstore.MinioConfig{Endpoint: d.Endpoint, AccessKey: access, SecretKey: secret,
		Bucket: d.Bucket, UseTLS: useTLS, Region: d.Region, PathStyle: d.PathStyle})
	if err != nil {
		return nil, err
	}
	return &s3Sender{store: st, d: d, target: fmt.Sprintf("s3://%s/%s/%s", d.Endpoint, d.Bucket, d.Prefix)}, nil
}

func (s *s3Sender) key(name string) string { return path.Join(s.d.Prefix, name) }

func (s *s3Sender) Target() string { return s.target }

func (s *s3Sender) Send(ctx context.Context, name string, r io.Reader, size int64, contentType string) (string, error) {
	key := s.key(name)
	info, err := s.store.Put(ctx, key, r, contentType)
	if err != nil {
		return "", fmt.Errorf("s3 %s bucket %s: %w", s.d.Endpoint, s.d.Bucket, err)
	}
	if info.Size != size {
		return "", fmt.Errorf("s3 %s bucket %s: stored %d bytes of %d", s.d.Endpoint, s.d.Bucket, info.Size, size)
	}
	return fmt.Sprintf("s3://%s/%s/%s", s.d.Endpoint, s.d.Bucket, key), nil
}

func (s *s3Sender) Probe(ctx context.Context) []Step {
	var steps []Step
	key := s.key(probeName())
	step(&steps, "connect", func() error { return s.store.Ping(ctx) })
	step(&steps, "write", func() error {
		_, err := s.store.Put(ctx, key, bytes.NewReader([]byte("probe\n")), "text/plain")
		return err
	})
	step(&steps, "remove", func() error { return s.store.Delete(ctx, key) })
	return steps
}

func (s *s3Sender) Close() error { return nil }
