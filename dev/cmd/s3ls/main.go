// Command s3ls prints, as JSON, the objects and the unfinished multipart uploads under a prefix
// of the local S3 bucket: what the end-to-end tests look at to prove a cancelled or deleted
// export left nothing behind.
//
//	s3ls [-prefix products/JOB_ID/]
//
// The server and bucket come from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET and
// S3_USE_TLS, as for the services.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	prefix := flag.String("prefix", "", "key prefix to list")
	flag.Parse()
	useTLS, _ := strconv.ParseBool(env("S3_USE_TLS", "false"))
	s, err := objectstore.NewMinio(objectstore.MinioConfig{
		Endpoint: env("S3_ENDPOINT", "127.0.0.1:9000"), AccessKey: env("S3_ACCESS_KEY", "minioadmin"),
		SecretKey: env("S3_SECRET_KEY", "minioadmin"), Bucket: env("S3_BUCKET", "exports"), UseTLS: useTLS,
	})
	if err != nil {
		fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objects, err := s.List(ctx, *prefix)
	if err != nil {
		fatalf("%v", err)
	}
	uploads, err := s.IncompleteUploads(ctx, *prefix)
	if err != nil {
		fatalf("%v", err)
	}
	out := struct {
		Objects []string `json:"objects"`
		Uploads []string `json:"uploads"`
	}{append([]string{}, objects...), append([]string{}, uploads...)}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "s3ls: "+format+"\n", args...)
	os.Exit(1)
}
