package objectstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore/objectstoretest"
)

func TestMemory(t *testing.T) {
	objectstoretest.Run(t, objectstore.NewMemory(), "t/")
}

// TestMinio runs the suite against the real S3 server of the local stack (make up).
func TestMinio(t *testing.T) {
	endpoint := os.Getenv("S3_ENDPOINT")
	if endpoint == "" {
		endpoint = "127.0.0.1:9000"
	}
	s, err := objectstore.NewMinio(objectstore.MinioConfig{
		Endpoint: endpoint, AccessKey: envOr("S3_ACCESS_KEY", "minioadmin"),
		SecretKey: envOr("S3_SECRET_KEY", "minioadmin"), Bucket: envOr("S3_BUCKET", "exports"),
		PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("S3 server of the local stack unreachable in CI: %v", err)
		}
		t.Skipf("no S3 server (run make up): %v", err)
	}
	prefix := fmt.Sprintf("conformance-%d/", time.Now().UnixNano())
	objectstoretest.Run(t, s, prefix)
	left, err := s.IncompleteUploads(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("incomplete multipart uploads left behind: %v", left)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestMinioAbortStaleUploads: an upload abandoned mid-way (its worker killed) is aborted once
// older than the cutoff, and not before.
func TestMinioAbortStaleUploads(t *testing.T) {
	endpoint := envOr("S3_ENDPOINT", "127.0.0.1:9000")
	access, secret, bucket := envOr("S3_ACCESS_KEY", "minioadmin"), envOr("S3_SECRET_KEY", "minioadmin"), envOr("S3_BUCKET", "exports")
	s, err := objectstore.NewMinio(objectstore.MinioConfig{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("S3 server of the local stack unreachable in CI: %v", err)
		}
		t.Skipf("no S3 server (run make up): %v", err)
	}
	cl, err := minio.NewCore(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("stale-%d/", time.Now().UnixNano())
	if _, err := cl.NewMultipartUpload(ctx, bucket, prefix+"abandoned.csv", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AbortStaleUploads(ctx, prefix, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("aborting uploads older than an hour = %d, %v; want none", n, err)
	}
	if n, err := s.AbortStaleUploads(ctx, prefix, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("aborting uploads older than now = %d, %v; want 1", n, err)
	}
	if left, err := s.IncompleteUploads(ctx, prefix); err != nil || len(left) != 0 {
		t.Errorf("incomplete uploads after the abort: %v, %v", left, err)
	}
}
