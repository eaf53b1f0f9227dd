// Command demoplatforms makes sure the local stack's two demo platforms exist, owned by the
// demo user (make run's token), and deliver to this stack's partner side:
//
//   - "Partner SFTP": CSV of the active products to the SFTP server at $SFTP_ADDR, directory
//     partner/, as $SFTP_USER with the key in $STACK_DIR/sftp/id_ed25519;
//   - "Partner bucket": the same, gzipped, to the bucket $PARTNER_S3_BUCKET under feeds/, with
//     the keys env:PARTNER_S3_ACCESS_KEY and env:PARTNER_S3_SECRET_KEY.
//
// A platform that exists is brought back to this definition (the SFTP host key changes when
// .stack/ is removed). It writes through the platforms' repository, the one place platforms
// change, with no audit event (no person acted).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
)

const owner = "demo"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demoplatforms:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack := os.Getenv("STACK_DIR")
	hostKey, err := os.ReadFile(filepath.Join(stack, "sftp", "host_ed25519_key.pub"))
	if err != nil {
		return fmt.Errorf("the SFTP server's host key (is the sftp part started?): %w", err)
	}
	host, port, _ := strings.Cut(os.Getenv("SFTP_ADDR"), ":")
	var portN int
	fmt.Sscanf(port, "%d", &portN)
	s3Endpoint := os.Getenv("S3_ENDPOINT")
	noTLS := false
	active := map[string]any{"status": "active"}
	specs := []platform.Spec{
		{Name: "Partner SFTP", Type: platform.Custom,
			DefaultConfig: export.Request{Entity: "products", Format: "csv", Filters: active, FileName: "partner-products.csv"},
			Destination: platform.Destination{Type: platform.SFTP, Host: host, Port: portN, User: os.Getenv("SFTP_USER"),
				PrivateKeyRef: "file:" + filepath.Join(stack, "sftp", "id_ed25519"),
				HostKey:       strings.Join(strings.Fields(string(hostKey))[:2], " "), Directory: "partner"}},
		{Name: "Partner bucket", Type: platform.Custom,
			DefaultConfig: export.Request{Entity: "products", Format: "csv", Filters: active, Compression: "gzip",
				FileName: "partner-products.csv"},
			Destination: platform.Destination{Type: platform.S3, Endpoint: s3Endpoint, Bucket: os.Getenv("PARTNER_S3_BUCKET"),
				Prefix: "feeds", PathStyle: true, UseTLS: &noTLS,
				AccessKeyRef: "env:PARTNER_S3_ACCESS_KEY", SecretKeyRef: "env:PARTNER_S3_SECRET_KEY"}},
	}
	pool, err := pgdb.Open(ctx, os.Getenv("EXPORTS_DATABASE_URL"), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		return err
	}
	st := platformstore.New(pool)
	mine, _, err := st.List(ctx, platformstore.ListFilter{Owner: owner, Limit: 500})
	if err != nil {
		return err
	}
	for _, spec := range specs {
		if err := spec.Normalize(); err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		var existing *platform.Platform
		for i := range mine {
			if strings.EqualFold(mine[i].Name, spec.Name) {
				existing = &mine[i]
			}
		}
		if existing == nil {
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			p, err := st.Create(ctx, platform.New(id.String(), spec, owner, time.Now()), nil)
			if errors.Is(err, platformstore.ErrNameTaken) {
				continue // another run made it meanwhile
			}
			if err != nil {
				return fmt.Errorf("%s: %w", spec.Name, err)
			}
			fmt.Printf("created %s (%s)\n", p.Name, p.ID)
			continue
		}
		was, _ := json.Marshal(existing.Spec)
		now, _ := json.Marshal(spec)
		if string(was) == string(now) {
			fmt.Printf("kept %s (%s)\n", existing.Name, existing.ID)
			continue
		}
		if _, err := st.Change(ctx, existing.ID, nil, func(p *platform.Platform) error {
			p.Spec, p.UpdatedAt = spec, time.Now().UTC()
			return nil
		}); err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		fmt.Printf("updated %s (%s)\n", existing.Name, existing.ID)
	}
	return nil
}
