package webhook_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSignMatchesTheSpecification: the Standard Webhooks specification's own example
// (secret, id, timestamp, payload) gives its signature.
func TestSignMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	// From the specification's reference implementations' tests.
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	id := "msg_p5jXN8AQM9LWM0D4loKWxJek"
	ts := time.Unix(1614265330, 0)
	payload := []byte(`{"test": 2432232314}`)
	got, err := webhook.Sign(secret, id, ts, payload)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	if _, err := webhook.Sign("whsec_!!", id, ts, payload); err == nil {
		t.Error("a malformed whsec_ secret was accepted")
	}
}
