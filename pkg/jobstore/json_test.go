package jobstore_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

func TestJobJSONFileHasObjectKey(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(jobstore.Job{ID: "j", File: &events.Object{Key: "products/j/p.csv", SHA256: "ab"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"object_key":"products/j/p.csv"`) || !strings.Contains(string(b), `"sha256":"ab"`) || !strings.Contains(string(b), `"id":"j"`) {
		t.Errorf("job JSON = %s", b)
	}
	if b, _ := json.Marshal(jobstore.Job{ID: "j"}); strings.Contains(string(b), `"file"`) {
		t.Errorf("a job without a file shows one: %s", b)
	}
}
