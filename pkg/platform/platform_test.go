package platform_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/platform"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTemplatesAreValidExports: every channel template prepares as an export, its titles on
// its own columns.
func TestTemplatesAreValidExports(t *testing.T) {
	t.Parallel()
	for _, ty := range platform.Types {
		if ty == platform.Custom {
			if tpl := platform.Template(ty); tpl.Entity != "" || len(tpl.Headers) != 0 {
				t.Errorf("custom brings %+v", tpl)
			}
			continue
		}
		spec, err := export.Prepare(platform.Template(ty))
		if err != nil {
			t.Errorf("%s: %v", ty, err)
			continue
		}
		if len(spec.Headers) == 0 {
			t.Errorf("%s: no column titles", ty)
		}
	}
	// A template platform gives the channel's titles; its own default_config goes over them.
	s := platform.Spec{Name: "Google feed", Type: platform.GoogleShopping,
		DefaultConfig: export.Request{Headers: map[string]string{"name": "title_en"}, Filters: map[string]any{"brand": "Acme"}}}
	d := s.Defaults()
	if d.Headers["sku"] != "id" || d.Headers["ean"] != "gtin" || d.Headers["name"] != "title_en" || d.Filters["status"] != "active" ||
		d.Filters["brand"] != "Acme" || d.Options["delimiter"] != "tab" {
		t.Errorf("defaults %+v", d)
	}
}

// TestNormalize: defaults filled, every bad input refused naming its field, and no secret
// accepted in clear (only env: or file: references).
func TestNormalize(t *testing.T) {
	t.Parallel()
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	ok := []platform.Spec{
		{Name: "plain"},
		{Name: "Partner bucket", Destination: platform.Destination{Type: platform.S3, Endpoint: "127.0.0.1:9000", Bucket: "partner",
			Prefix: "feeds/", PathStyle: true, AccessKeyRef: "env:PARTNER_KEY", SecretKeyRef: "file:/run/secrets/partner"}},
		{Name: "Partner SFTP", Destination: platform.Destination{Type: platform.SFTP, Host: "127.0.0.1", Port: 2222, User: "partner",
			PrivateKeyRef: "file:/stack/sftp/id_ed25519", HostKey: key, Directory: "upload"}},
		{Name: "hook", Destination: platform.Destination{Type: platform.HTTP, URL: "https://erp.example/import"},
			Webhook: &platform.Webhook{URL: "https://erp.example/hook", SecretRef: "env:HOOK_SECRET", Events: []string{"delivered"}}},
	}
	for _, s := range ok {
		if err := s.Normalize(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	if s := ok[0]; s.Normalize() != nil || s.Type != platform.Custom || s.Destination.Type != platform.Storage {
		t.Errorf("defaults %+v", s)
	}
	if s := ok[3]; s.Normalize() != nil || s.Destination.Method != "PUT" {
		t.Errorf("http defaults %+v", s.Destination)
	}
	sftp := ok[2].Destination
	bad := []struct {
		spec  platform.Spec
		field string
	}{
		{platform.Spec{Name: " "}, "name"},
		{platform.Spec{Name: "x", Type: "ebay"}, "type"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: "ftp"}}, "destination.type"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Host: "h"}}, "destination.host"}, // storage takes no setting
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.S3, Endpoint: "https://s3.example", Bucket: "b1b", AccessKeyRef: "env:A", SecretKeyRef: "env:B"}}, "destination.endpoint"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.S3, Endpoint: "s3.example", Bucket: "B!", AccessKeyRef: "env:A", SecretKeyRef: "env:B"}}, "destination.bucket"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.S3, Endpoint: "s3.example", Bucket: "bkt", AccessKeyRef: "AKIAIOSFODNN7EXAMPLE", SecretKeyRef: "env:B"}}, "destination.access_key_ref"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.S3, Endpoint: "s3.example", Bucket: "bkt", Prefix: "a/../b", AccessKeyRef: "env:A", SecretKeyRef: "env:B"}}, "destination.prefix"},
		{platform.Spec{Name: "x", Destination: func() platform.Destination { d := sftp; d.HostKey = ""; return d }()}, "destination.host_key"},
		{platform.Spec{Name: "x", Destination: func() platform.Destination { d := sftp; d.PrivateKeyRef = ""; return d }()}, "destination.private_key_ref"},
		{platform.Spec{Name: "x", Destination: func() platform.Destination { d := sftp; d.Port = 70000; return d }()}, "destination.port"},
		{platform.Spec{Name: "x", Destination: func() platform.Destination { d := sftp; d.PasswordRef = "hunter2"; return d }()}, "destination.password_ref"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.HTTP, URL: "ftp://x"}}, "destination.url"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.HTTP, URL: "https://u:p@x"}}, "destination.url"},
		{platform.Spec{Name: "x", Destination: platform.Destination{Type: platform.HTTP, URL: "https://x", Method: "GET"}}, "destination.method"},
		{platform.Spec{Name: "x", Webhook: &platform.Webhook{URL: "https://x", SecretRef: "env:S", Events: []string{"started"}}}, "webhook.events"},
		{platform.Spec{Name: "x", Webhook: &platform.Webhook{URL: "https://x"}}, "webhook.secret_ref"},
	}
	for _, c := range bad {
		err := c.spec.Normalize()
		var fe *platform.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a refusal of %s", c.spec, err, c.field)
		}
	}
}
