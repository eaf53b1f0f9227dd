package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// MinioConfig locates an S3-compatible bucket.
type MinioConfig struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	UseTLS    bool
	// PartSize is the multipart chunk: memory use of one upload is about this much.
	// Left at zero, minio-go would guess from an unknown size and buffer hundreds of MiB.
	PartSize uint64
	// Region, when the server needs one named; PathStyle puts the bucket in the path rather
	// than the host name (most S3-compatible servers but AWS).
	Region    string
	PathStyle bool
}

// Minio is the Store of an S3-compatible server.
type Minio struct {
	cl       *minio.Client
	bucket   string
	partSize uint64
}

// NewMinio builds the adapter (no network call).
func NewMinio(cfg MinioConfig) (*Minio, error) {
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	cl, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.UseTLS,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	ps := cfg.PartSize
	if ps == 0 {
		ps = 16 << 20
	}
	return &Minio{cl: cl, bucket: cfg.Bucket, partSize: ps}, nil
}

// Put streams r as a multipart upload of PartSize parts. minio-go (v7.4+) aborts the upload
// when it fails, with a context of its own when ctx was the cause (a cancelled job), and
// nothing is visible before CompleteMultipartUpload. Traced as "s3 upload": from the first
// byte asked of r to the completed upload.
func (m *Minio) Put(ctx context.Context, key string, r io.Reader, contentType string) (_ Info, err error) {
	ctx, span := m.span(ctx, "s3 upload", key)
	defer func() { telemetry.End(span, err) }()
	ui, err := m.cl.PutObject(ctx, m.bucket, key, r, -1, minio.PutObjectOptions{
		ContentType:    contentType,
		PartSize:       m.partSize,
		NumThreads:     1,
		SendContentMd5: false,
		// The caller hashes what it writes (the job's sha256) and checks the size; a second
		// SHA-256 pass here, for the request signature, costs a core-second per 400 MB and
		// proves nothing more, so the payload is sent as UNSIGNED-PAYLOAD.
		DisableContentSha256: true,
	})
	if err != nil {
		return Info{}, fmt.Errorf("uploading %s: %w", key, err)
	}
	span.SetAttributes(attribute.Int64("s3.object.size", ui.Size))
	return Info{Key: key, Size: ui.Size, ContentType: contentType, LastModified: ui.LastModified}, nil
}

// span starts a client span of an S3 call on key (a no-op span with tracing off).
func (m *Minio) span(ctx context.Context, name, key string) (context.Context, trace.Span) {
	return telemetry.Start(ctx, "objectstore", name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("rpc.system", "aws-api"), attribute.String("rpc.service", "S3"),
			attribute.String("aws.s3.bucket", m.bucket), attribute.String("aws.s3.key", key)))
}

// Get opens key.
func (m *Minio) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	info, err := m.Stat(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	obj, err := m.cl.GetObject(ctx, m.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, fmt.Errorf("downloading %s: %w", key, mapErr(err))
	}
	return obj, info, nil
}

// Stat describes key.
func (m *Minio) Stat(ctx context.Context, key string) (Info, error) {
	oi, err := m.cl.StatObject(ctx, m.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", key, mapErr(err))
	}
	return Info{Key: key, Size: oi.Size, ContentType: oi.ContentType, LastModified: oi.LastModified}, nil
}

// Delete removes key.
func (m *Minio) Delete(ctx context.Context, key string) error {
	if err := m.cl.RemoveObject(ctx, m.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(mapErr(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// List returns the keys under prefix.
func (m *Minio) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for oi := range m.cl.ListObjects(ctx, m.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", prefix, oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	return keys, nil
}

// IncompleteUploads lists the keys of multipart uploads started under prefix and never
// completed nor aborted.
func (m *Minio) IncompleteUploads(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for u := range m.cl.ListIncompleteUploads(ctx, m.bucket, prefix, true) {
		if u.Err != nil {
			return nil, fmt.Errorf("listing incomplete uploads under %s: %w", prefix, u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys, nil
}

// AbortStaleUploads aborts the multipart uploads under prefix started before cutoff and never
// completed (a worker killed mid-upload leaves one): S3 keeps their parts, billed and invisible,
// until then. It returns how many it aborted.
func (m *Minio) AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	core := minio.Core{Client: m.cl}
	n := 0
	for u := range m.cl.ListIncompleteUploads(ctx, m.bucket, prefix, true) {
		if u.Err != nil {
			return n, fmt.Errorf("listing incomplete uploads under %q: %w", prefix, u.Err)
		}
		if !u.Initiated.Before(cutoff) {
			continue
		}
		if err := core.AbortMultipartUpload(ctx, m.bucket, u.Key, u.UploadID); err != nil && !errors.Is(mapErr(err), ErrNotFound) {
			return n, fmt.Errorf("aborting the upload %s of %s: %w", u.UploadID, u.Key, err)
		}
		n++
	}
	return n, nil
}

// Ping checks that the bucket exists.
func (m *Minio) Ping(ctx context.Context) error {
	ok, err := m.cl.BucketExists(ctx, m.bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", m.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3 bucket %s does not exist", m.bucket)
	}
	return nil
}

func mapErr(err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchKey" {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// Compose joins srcs into key server-side (multipart upload of part copies).
func (m *Minio) Compose(ctx context.Context, key string, srcs []string, contentType string) (_ Info, err error) {
	ctx, span := m.span(ctx, "s3 compose", key)
	defer func() { telemetry.End(span, err) }()
	opts := make([]minio.CopySrcOptions, len(srcs))
	for i, s := range srcs {
		opts[i] = minio.CopySrcOptions{Bucket: m.bucket, Object: s}
	}
	ui, err := m.cl.ComposeObject(ctx, minio.CopyDestOptions{Bucket: m.bucket, Object: key, ContentType: contentType,
		ReplaceMetadata: true}, opts...)
	if err != nil {
		return Info{}, fmt.Errorf("composing %s of %d parts: %w", key, len(srcs), mapErr(err))
	}
	return Info{Key: key, Size: ui.Size, ContentType: contentType, LastModified: ui.LastModified}, nil
}
