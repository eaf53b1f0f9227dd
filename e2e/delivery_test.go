package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

type deliveryView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	File     *jobFile
	Delivery *struct {
		Status      string     `json:"status"`
		Attempts    int        `json:"attempts"`
		Target      string     `json:"target"`
		DeliveredAt *time.Time `json:"delivered_at"`
		LastError   *struct {
			Message string `json:"message"`
		} `json:"last_error"`
	} `json:"delivery"`
}

// waitDelivery polls the job until its delivery is in one of want (or the timeout passes).
func (s stack) waitDelivery(t *testing.T, id string, timeout time.Duration, want ...string) deliveryView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var j deliveryView
	for {
		code, b := s.do(t, http.MethodGet, "/api/v1/exports/"+id, s.writer(t), nil)
		if code != http.StatusOK || json.Unmarshal(b, &j) != nil {
			t.Fatalf("GET job %s = %d %s", id, code, b)
		}
		if j.Delivery != nil && strings.Contains(strings.Join(want, ","), j.Delivery.Status) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: delivery %+v after %s, want %v", id, j.Delivery, timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sftpDestination is a destination on the stack's SFTP server, in dir, logging in with the
// private key in keyFile.
func (s stack) sftpDestination(t *testing.T, dir, keyFile string) map[string]any {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(s.root, ".stack/sftp/host_ed25519_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	return map[string]any{"type": "sftp", "host": "127.0.0.1", "port": 2222, "user": env("SFTP_USER", "root"),
		"private_key_ref": "file:" + keyFile, "host_key": f[0] + " " + f[1], "directory": dir}
}

// sftpGet reads a file back over SFTP with OpenSSH's own client.
func (s stack) sftpGet(t *testing.T, remote string) []byte {
	t.Helper()
	local := filepath.Join(t.TempDir(), "got")
	cmd := exec.Command("sftp", "-q", "-b", "-", "-i", filepath.Join(s.root, ".stack/sftp/id_ed25519"), "-P", "2222",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", env("SFTP_USER", "root")+"@127.0.0.1")
	cmd.Stdin = strings.NewReader("get " + remote + " " + local + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp get %s: %v %s", remote, err, out)
	}
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s stack) testPlatform(t *testing.T, id string) (bool, string) {
	t.Helper()
	code, b := s.do(t, http.MethodPost, "/api/v1/exports/platforms/"+id+"/test", s.writer(t), nil)
	var res struct {
		OK bool `json:"ok"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &res) != nil {
		t.Fatalf("test platform: %d %s", code, b)
	}
	return res.OK, string(b)
}

// TestDeliveryToSFTPAndS3: a 100,000-row CSV delivered over SFTP (read back with OpenSSH's sftp)
// and, gzipped, into the partner bucket has the announced sha256 and decompresses to the
// SFTP copy's bytes; each platform's test passes; one export.delivered is audited per job.
func TestDeliveryToSFTPAndS3(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 100000)
	dir := unique("e2e-sftp")
	sftpP := s.createPlatform(t, map[string]any{"name": unique("Partner SFTP e2e"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv"},
		"destination":    s.sftpDestination(t, dir, filepath.Join(s.root, ".stack/sftp/id_ed25519"))})
	prefix := unique("e2e-s3")
	s3P := s.createPlatform(t, map[string]any{"name": unique("Partner bucket e2e"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv", "compression": "gzip"},
		"destination": map[string]any{"type": "s3", "endpoint": env("S3_ENDPOINT", "127.0.0.1:9000"), "bucket": "partner",
			"prefix": prefix, "path_style": true, "use_tls": false,
			"access_key_ref": "env:PARTNER_S3_ACCESS_KEY", "secret_key_ref": "env:PARTNER_S3_SECRET_KEY"}})
	for _, p := range []platformView{sftpP, s3P} {
		if ok, body := s.testPlatform(t, p.ID); !ok {
			t.Errorf("test of %s failed: %s", p.Name, body)
		}
	}

	a := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": sftpP.ID})
	b := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": s3P.ID})
	ja := s.waitDelivery(t, a.JobID, 2*time.Minute, "delivered")
	jb := s.waitDelivery(t, b.JobID, 2*time.Minute, "delivered")

	viaSFTP := s.sftpGet(t, dir+"/products.csv")
	if sha(viaSFTP) != ja.File.SHA256 || int64(len(viaSFTP)) != ja.File.SizeBytes {
		t.Errorf("SFTP copy: %d bytes sha256 %s; announced %d bytes %s", len(viaSFTP), sha(viaSFTP), ja.File.SizeBytes, ja.File.SHA256)
	}
	if recs, err := csv.NewReader(bytes.NewReader(viaSFTP)).ReadAll(); err != nil || len(recs) != 100001 {
		t.Errorf("SFTP copy holds %d records (%v), want a header and 100,000 rows", len(recs), err)
	}
	if want := "sftp://" + env("SFTP_USER", "root") + "@127.0.0.1:2222/" + dir + "/products.csv"; ja.Delivery.Target != want {
		t.Errorf("target %q, want %q", ja.Delivery.Target, want)
	}
	partner, err := objectstore.NewMinio(objectstore.MinioConfig{Endpoint: env("S3_ENDPOINT", "127.0.0.1:9000"),
		AccessKey: env("S3_ACCESS_KEY", "minioadmin"), SecretKey: env("S3_SECRET_KEY", "minioadmin"), Bucket: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := partner.Get(context.Background(), prefix+"/products.csv.gz")
	if err != nil {
		t.Fatalf("the partner bucket: %v", err)
	}
	viaS3, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || sha(viaS3) != jb.File.SHA256 {
		t.Errorf("S3 copy: %d bytes sha256 %s; announced %s (%v)", len(viaS3), sha(viaS3), jb.File.SHA256, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(viaS3))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, viaSFTP) {
		t.Errorf("the gzipped copy decompresses to %d bytes (%v), want the SFTP copy's %d", len(plain), err, len(viaSFTP))
	}
	for _, id := range []string{a.JobID, b.JobID} {
		if rows := s.auditWhere(t, "resource_id = $1 AND action = 'export.delivered'", id, 1); len(rows) != 1 {
			t.Errorf("job %s: %d export.delivered rows, want 1", id, len(rows))
		}
	}
}

// TestDeliveryRetriedAndFailed: with the SFTP server stopped, the job completes and its
// delivery waits with the connection error, then succeeds once the server is back (one
// export.delivered); a platform with a key the server does not accept fails its test at the
// login and its delivery fails for good after its retries, naming the cause, until retried.
func TestDeliveryRetriedAndFailed(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 100000)
	dir := unique("e2e-retry")
	p := s.createPlatform(t, map[string]any{"name": unique("SFTP retry"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku", "name"}},
		"destination":    s.sftpDestination(t, dir, filepath.Join(s.root, ".stack/sftp/id_ed25519"))})
	stack := filepath.Join(s.root, "dev/stack.sh")
	if out, err := exec.Command(stack, "stop", "sftp").CombinedOutput(); err != nil {
		t.Fatalf("stop sftp: %v %s", err, out)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = exec.Command(stack, "start", "sftp").Run()
		}
	}()
	a := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": p.ID})
	s.waitStatus(t, a.JobID, "completed", time.Minute)
	j := s.waitDelivery(t, a.JobID, time.Minute, "pending")
	for j.Delivery.Attempts < 1 || j.Delivery.LastError == nil {
		time.Sleep(200 * time.Millisecond)
		j = s.waitDelivery(t, a.JobID, time.Minute, "pending", "delivering")
	}
	if j.Status != "completed" || !strings.Contains(j.Delivery.LastError.Message, "connection refused") {
		t.Errorf("while the server is away: job %s, delivery %+v", j.Status, j.Delivery)
	}
	if out, err := exec.Command(stack, "start", "sftp").CombinedOutput(); err != nil {
		t.Fatalf("start sftp: %v %s", err, out)
	}
	restarted = true
	j = s.waitDelivery(t, a.JobID, time.Minute, "delivered")
	if got := s.sftpGet(t, dir+"/products.csv"); sha(got) != j.File.SHA256 || j.Delivery.Attempts < 2 {
		t.Errorf("after the server came back: sha256 %s (announced %s), %d attempts", sha(got), j.File.SHA256, j.Delivery.Attempts)
	}
	if rows := s.auditWhere(t, "resource_id = $1 AND action = 'export.delivered'", a.JobID, 1); len(rows) != 1 {
		t.Errorf("%d export.delivered rows, want 1", len(rows))
	}
	// Delivery events are keyed delivery:<job id> (the job's own key ends with its terminal event).
	s.findEvent(t, "delivery:"+a.JobID, events.TypeDelivered, time.Minute)
	if n := s.countEvents(t, "delivery:"+a.JobID, events.TypeDelivered, 3*time.Second); n != 1 {
		t.Errorf("%d ExportDelivered on %s, want 1", n, events.TopicEvents)
	}

	// A key the server does not know.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "wrong_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := s.createPlatform(t, map[string]any{"name": unique("SFTP wrong key"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"}},
		"destination":    s.sftpDestination(t, dir, keyFile)})
	if ok, body := s.testPlatform(t, bad.ID); ok || !strings.Contains(body, `"step":"connect"`) || !strings.Contains(body, "unable to authenticate") {
		t.Errorf("test with a wrong key: %s", body)
	}
	f := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": bad.ID})
	j = s.waitDelivery(t, f.JobID, 90*time.Second, "failed")
	if j.Status != "completed" || j.Delivery.Attempts != 5 || j.Delivery.LastError == nil ||
		!strings.Contains(j.Delivery.LastError.Message, "unable to authenticate") {
		t.Errorf("failed delivery: job %s, delivery %+v", j.Status, j.Delivery)
	}
	if e := s.findEvent(t, "delivery:"+f.JobID, events.TypeDeliveryFailed, time.Minute); !strings.Contains(string(e.Data), "unable to authenticate") {
		t.Errorf("ExportDeliveryFailed does not name the cause: %s", e.Data)
	}
	code, body := s.do(t, http.MethodPost, "/api/v1/exports/"+f.JobID+"/deliver", s.writer(t), nil)
	if code != http.StatusAccepted || !bytes.Contains(body, []byte(`"status":"pending"`)) {
		t.Errorf("retry of a failed delivery: %d %s", code, body)
	}
	if code, _ := s.do(t, http.MethodPost, "/api/v1/exports/"+a.JobID+"/deliver", s.writer(t), nil); code != http.StatusConflict {
		t.Errorf("retry of a delivered file: %d, want 409", code)
	}
}

// TestDeliveryOverHTTP: a platform with an http destination PUTs the file to a receiver (a
// real HTTP server in the test) with its name, type and the authorization read from a mounted
// secret; a 503 is retried; the bytes received have the announced sha256; the platform's
// test sends a probe the same way.
func TestDeliveryOverHTTP(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 100000)
	secret := filepath.Join(t.TempDir(), "authorization")
	if err := os.WriteFile(secret, []byte("Bearer e2e-partner-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type received struct {
		method, path, auth, disposition, contentType string
		length                                       int64
		sha                                          string
	}
	var mu sync.Mutex
	var got []received
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		_, err := io.Copy(h, r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		got = append(got, received{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Disposition"),
			r.Header.Get("Content-Type"), r.ContentLength, hex.EncodeToString(h.Sum(nil))})
		if err != nil || (calls == 2) { // the first export's delivery: refused once
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := s.createPlatform(t, map[string]any{"name": unique("ERP over HTTP"), "type": "custom",
		"default_config": map[string]any{"entity": "products", "format": "json"},
		"destination":    map[string]any{"type": "http", "url": srv.URL + "/import/{name}", "authorization_ref": "file:" + secret}})
	if ok, body := s.testPlatform(t, p.ID); !ok {
		t.Fatalf("test of the http platform failed: %s", body)
	}
	a := s.requestExport(t, s.writer(t), "json", "products", map[string]any{"platform_id": p.ID})
	j := s.waitDelivery(t, a.JobID, 2*time.Minute, "delivered")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("the receiver got %d requests (%+v), want the probe, a refused delivery and its retry", len(got), got)
	}
	if probe := got[0]; probe.method != http.MethodPut || !strings.HasPrefix(probe.path, "/import/.export-platform-probe-") || probe.auth != "Bearer e2e-partner-token" {
		t.Errorf("probe %+v", probe)
	}
	for _, r := range got[1:] {
		if r.method != http.MethodPut || r.path != "/import/products.json" || r.auth != "Bearer e2e-partner-token" ||
			r.disposition != `attachment; filename="products.json"` || !strings.HasPrefix(r.contentType, "application/json") || r.length != j.File.SizeBytes {
			t.Errorf("delivery request %+v", r)
		}
	}
	if got[2].sha != j.File.SHA256 {
		t.Errorf("received sha256 %s, announced %s", got[2].sha, j.File.SHA256)
	}
	if j.Delivery.Attempts != 2 || j.Delivery.Target != srv.URL+"/import/products.json" {
		t.Errorf("delivery %+v, want delivered on the 2nd attempt to the file's URL", j.Delivery)
	}
}

// TestDemoPlatformsDeliver: the two platforms make up creates for the demo user deliver as
// they are: "Partner SFTP" to the SFTP server's partner/ directory and "Partner bucket",
// gzipped, to the partner bucket, each with the announced sha256.
func TestDemoPlatformsDeliver(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	tok := s.token(t, "demo", "READ_EXPORTS", "WRITE_EXPORTS")
	code, b := s.do(t, http.MethodGet, "/api/v1/exports/platforms?limit=500", tok, nil)
	var list struct {
		Items []platformView `json:"items"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &list) != nil {
		t.Fatalf("the demo user's platforms: %d %s", code, b)
	}
	ids := map[string]string{}
	for _, p := range list.Items {
		ids[p.Name] = p.ID
	}
	partner, err := objectstore.NewMinio(objectstore.MinioConfig{Endpoint: env("S3_ENDPOINT", "127.0.0.1:9000"),
		AccessKey: env("S3_ACCESS_KEY", "minioadmin"), SecretKey: env("S3_SECRET_KEY", "minioadmin"), Bucket: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() []byte{
		"Partner SFTP": func() []byte { return s.sftpGet(t, "partner/partner-products.csv") },
		"Partner bucket": func() []byte {
			rc, _, err := partner.Get(context.Background(), "feeds/partner-products.csv.gz")
			if err != nil {
				t.Fatalf("the partner bucket: %v", err)
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			return b
		},
	} {
		id, ok := ids[name]
		if !ok {
			t.Errorf("no platform %q for the demo user (make up creates it): %v", name, ids)
			continue
		}
		if ok, body := s.do(t, http.MethodPost, "/api/v1/exports/platforms/"+id+"/test", tok, nil); ok != http.StatusOK || !strings.Contains(string(body), `"ok":true`) {
			t.Errorf("test of %s: %d %s", name, ok, body)
		}
		code, b := s.do(t, http.MethodPost, "/api/v1/exports/create", tok, map[string]any{"platform_id": id})
		var acc acceptedJob
		if code != http.StatusAccepted || json.Unmarshal(b, &acc) != nil {
			t.Fatalf("export with %s: %d %s", name, code, b)
		}
		deadline := time.Now().Add(2 * time.Minute)
		var j deliveryView
		for j.Delivery == nil || j.Delivery.Status != "delivered" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: delivery %+v after 2 minutes", name, j.Delivery)
			}
			time.Sleep(200 * time.Millisecond)
			code, b := s.do(t, http.MethodGet, "/api/v1/exports/"+acc.JobID, tok, nil)
			if code != http.StatusOK || json.Unmarshal(b, &j) != nil {
				t.Fatalf("GET %s: %d %s", acc.JobID, code, b)
			}
		}
		if got := read(); sha(got) != j.File.SHA256 || len(got) == 0 {
			t.Errorf("%s: the delivered copy (%d bytes) has sha256 %s, announced %s", name, len(got), sha(got), j.File.SHA256)
		}
	}
}
