package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// benchDelivery measures deliveries of the whole catalog's CSV (1,000,000 rows by default) to
// the stack's SFTP server and to its partner bucket: the delivery's own duration (its attempt's
// start to its end, server side) as MiB/s, against a plain copy of the same file by the same
// transport (OpenSSH's sftp put; an S3 PUT through minio-go), and the exporter's peak RSS while
// it delivers (the file streams from bucket to destination: it must not grow with the file).
func (b *bench) benchDelivery(ctx context.Context) {
	stack := b.cfg.stackDir
	pub, err := os.ReadFile(filepath.Join(stack, "sftp", "host_ed25519_key.pub"))
	if err != nil {
		b.fail("delivery", "the SFTP server's host key: "+err.Error())
		return
	}
	f := strings.Fields(string(pub))
	user := os.Getenv("SFTP_USER")
	if user == "" {
		user = "root"
	}
	dir := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	dests := []struct {
		name string
		dest map[string]any
	}{
		{"sftp", map[string]any{"type": "sftp", "host": "127.0.0.1", "port": 2222, "user": user, "directory": dir,
			"private_key_ref": "file:" + filepath.Join(stack, "sftp", "id_ed25519"), "host_key": f[0] + " " + f[1]}},
		{"s3", map[string]any{"type": "s3", "endpoint": os.Getenv("S3_ENDPOINT"), "bucket": "partner", "prefix": dir,
			"path_style": true, "use_tls": false, "access_key_ref": "env:PARTNER_S3_ACCESS_KEY", "secret_key_ref": "env:PARTNER_S3_SECRET_KEY"}},
	}
	for _, d := range dests {
		name := "delivery_" + d.name
		var p struct {
			ID string `json:"id"`
		}
		if err := b.call(ctx, http.MethodPost, "/api/v1/exports/platforms", map[string]any{
			"name": fmt.Sprintf("bench %s %d", d.name, time.Now().UnixNano()), "type": "custom",
			"default_config": map[string]any{"entity": "products", "format": "csv"}, "destination": d.dest,
		}, http.StatusCreated, &p); err != nil {
			b.fail(name, err.Error())
			continue
		}
		b.measureDelivery(ctx, name, p.ID, d.name, dir)
		_ = b.call(ctx, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, nil, http.StatusNoContent, nil)
	}
}

type deliveredJob struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	FinishedAt *time.Time `json:"finished_at"`
	File       *struct {
		Key       string `json:"object_key"`
		SizeBytes int64  `json:"size_bytes"`
		FileName  string `json:"file_name"`
	} `json:"file"`
	Delivery *struct {
		Status        string     `json:"status"`
		DeliveredAt   *time.Time `json:"delivered_at"`
		LastAttemptAt *time.Time `json:"last_attempt_at"`
		LastError     *struct {
			Message string `json:"message"`
		} `json:"last_error"`
	} `json:"delivery"`
}

func (b *bench) measureDelivery(ctx context.Context, name, platformID, kind, dir string) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	var created struct {
		TaskID string `json:"task_id"`
	}
	if err := b.call(ctx, http.MethodPost, "/api/v1/exports/create", map[string]any{"platform_id": platformID}, http.StatusAccepted, &created); err != nil {
		b.fail(name, err.Error())
		return
	}
	if _, err := b.waitJob(ctx, name, created.TaskID); err != nil {
		b.fail(name, err.Error())
		return
	}
	// From the completion on, the exporter's memory is the delivery's.
	var mon *rssMonitor
	pid, err := b.servicePID("exporter")
	if err == nil {
		mon = startRSS(pid, b.cfg.sample)
	}
	var j deliveredJob
	for {
		if err := b.call(ctx, http.MethodGet, "/api/v1/exports/"+created.TaskID, nil, http.StatusOK, &j); err != nil {
			b.fail(name, err.Error())
			return
		}
		if j.Delivery != nil && (j.Delivery.Status == "delivered" || j.Delivery.Status == "failed") {
			break
		}
		select {
		case <-ctx.Done():
			b.fail(name, "the delivery did not end in time")
			return
		case <-time.After(b.cfg.poll):
		}
	}
	var rss rssResult
	if mon != nil {
		rss = mon.Stop()
	}
	if j.Delivery.Status != "delivered" || j.Delivery.LastAttemptAt == nil || j.Delivery.DeliveredAt == nil || j.File == nil {
		msg := "delivery " + j.Delivery.Status
		if j.Delivery.LastError != nil {
			msg += ": " + j.Delivery.LastError.Message
		}
		b.fail(name, msg)
		return
	}
	secs := j.Delivery.DeliveredAt.Sub(*j.Delivery.LastAttemptAt).Seconds()
	mib := float64(j.File.SizeBytes) / (1 << 20)
	b.emit(name+"_file_mib", mib, "MiB", 1)
	b.emit(name+"_seconds", secs, "s", 2)
	b.emit(name+"_mib_per_s", mib/secs, "MiB/s", 1)
	if mon != nil {
		b.emit(name+"_exporter_peak_rss_mib", rss.peakMiB(), "MiB", 1)
		b.logf("%s: exporter pid %d: %s", name, pid, rss)
	}
	// The plain copy of the same bytes by the same transport.
	local := filepath.Join(os.TempDir(), fmt.Sprintf("bench-delivery-%d.csv", time.Now().UnixNano()))
	defer os.Remove(local)
	if err := b.downloadTo(ctx, created.TaskID, local); err != nil {
		b.fail(name+"_plain_copy", err.Error())
		return
	}
	plain, err := b.plainCopy(ctx, kind, local, dir)
	if err != nil {
		b.fail(name+"_plain_copy", err.Error())
		return
	}
	b.emit(name+"_plain_copy_mib_per_s", mib/plain.Seconds(), "MiB/s", 1)
	b.emit(name+"_vs_plain_copy", (mib/secs)/(mib/plain.Seconds()), "ratio", 2)
	if !b.cfg.keep {
		b.remove(ctx, created.TaskID)
	}
}

// downloadTo saves a job's file to path.
func (b *bench) downloadTo(ctx context.Context, id, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.apiURL+"/api/v1/exports/download/"+id, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plainCopy copies the file by the destination's transport, as a person would: OpenSSH's
// sftp put, or one S3 PUT with minio-go.
func (b *bench) plainCopy(ctx context.Context, kind, local, dir string) (time.Duration, error) {
	t0 := time.Now()
	switch kind {
	case "sftp":
		user := os.Getenv("SFTP_USER")
		if user == "" {
			user = "root"
		}
		cmd := exec.CommandContext(ctx, "sftp", "-q", "-b", "-", "-i", filepath.Join(b.cfg.stackDir, "sftp", "id_ed25519"), "-P", "2222",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", user+"@127.0.0.1")
		cmd.Stdin = strings.NewReader("put " + local + " " + dir + "/plain-copy.csv\nrm " + dir + "/plain-copy.csv\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("sftp put: %v %s", err, out)
		}
	case "s3":
		st, err := objectstore.NewMinio(objectstore.MinioConfig{Endpoint: os.Getenv("S3_ENDPOINT"), AccessKey: os.Getenv("PARTNER_S3_ACCESS_KEY"),
			SecretKey: os.Getenv("PARTNER_S3_SECRET_KEY"), Bucket: "partner"})
		if err != nil {
			return 0, err
		}
		f, err := os.Open(local)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if _, err := st.Put(ctx, dir+"/plain-copy.csv", f, "text/csv"); err != nil {
			return 0, err
		}
		defer func() { _ = st.Delete(context.WithoutCancel(ctx), dir+"/plain-copy.csv") }()
	}
	return time.Since(t0), nil
}
