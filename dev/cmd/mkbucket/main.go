// Command mkbucket waits for the local S3 server, creates a bucket if it is missing and,
// with -verify, checks a real PUT/GET/DELETE round trip through the S3 API.
//
//	mkbucket [-endpoint 127.0.0.1:9000] [-bucket exports] [-wait 60s] [-verify]
//
// Defaults come from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET and S3_USE_TLS.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	useTLS, _ := strconv.ParseBool(env("S3_USE_TLS", "false"))
	endpoint := flag.String("endpoint", env("S3_ENDPOINT", "127.0.0.1:9000"), "S3 host:port ($S3_ENDPOINT)")
	access := flag.String("access", env("S3_ACCESS_KEY", "minioadmin"), "access key ($S3_ACCESS_KEY)")
	secret := flag.String("secret", env("S3_SECRET_KEY", "minioadmin"), "secret key ($S3_SECRET_KEY)")
	bucket := flag.String("bucket", env("S3_BUCKET", "exports"), "bucket to create ($S3_BUCKET)")
	secure := flag.Bool("tls", useTLS, "use https ($S3_USE_TLS)")
	wait := flag.Duration("wait", 60*time.Second, "how long to wait for the server to answer")
	verify := flag.Bool("verify", false, "also PUT, GET and DELETE a small object")
	flag.Parse()

	cl, err := minio.New(*endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(*access, *secret, ""),
		Secure:       *secure,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		fatalf("s3 client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait+60*time.Second)
	defer cancel()

	exists, err := waitForServer(ctx, cl, *bucket, *wait)
	if err != nil {
		fatalf("s3 server %s not answering after %s: %v", *endpoint, *wait, err)
	}
	if exists {
		fmt.Printf("bucket %s: exists\n", *bucket)
	} else {
		if err := cl.MakeBucket(ctx, *bucket, minio.MakeBucketOptions{}); err != nil {
			// A concurrent creator may have won the race: that is fine.
			if ok, err2 := cl.BucketExists(ctx, *bucket); err2 != nil || !ok {
				fatalf("create bucket %s: %v", *bucket, err)
			}
		}
		fmt.Printf("bucket %s: created\n", *bucket)
	}

	if *verify {
		if err := roundTrip(ctx, cl, *bucket); err != nil {
			fatalf("verify: %v", err)
		}
		fmt.Printf("bucket %s: PUT/GET/DELETE round trip ok\n", *bucket)
	}
}

// waitForServer polls BucketExists (a signed HEAD request) until the server gives an S3
// answer; connection errors and 5xx are retried until the deadline.
func waitForServer(ctx context.Context, cl *minio.Client, bucket string, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		ok, err := cl.BucketExists(attempt, bucket)
		cancel()
		if err == nil {
			return ok, nil
		}
		if time.Now().After(deadline) {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func roundTrip(ctx context.Context, cl *minio.Client, bucket string) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := "_selftest/" + hex.EncodeToString(rnd[:]) + ".txt"
	body := []byte("export platform s3 self-test " + time.Now().UTC().Format(time.RFC3339Nano) + "\n")

	if _, err := cl.PutObject(ctx, bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	obj, err := cl.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	got, err := io.ReadAll(obj)
	_ = obj.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("get %s: body mismatch: got %q want %q", key, got, body)
	}
	if err := cl.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mkbucket: "+format+"\n", args...)
	os.Exit(1)
}
