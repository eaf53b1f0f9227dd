package schedule

import (
	"strings"
	"testing"

	"github.com/robfig/cron/v3"
)

// TestParseCronRecovers: robfig/cron panics on some time-zone prefixes (ParseCron refuses them
// before calling it); should a panic come from it anyway, it is a refusal, not a crash.
func TestParseCronRecovers(t *testing.T) {
	func() {
		defer func() {
			if recover() == nil {
				t.Log("robfig/cron no longer panics on a bare TZ= prefix; the refusal before it stays")
			}
		}()
		_, _ = cron.ParseStandard("TZ=")
	}()
	real := parse
	t.Cleanup(func() { parse = real })
	parse = func(string) (cron.Schedule, error) { panic("index out of range") }
	if s, err := ParseCron("0 3 * * *"); s != nil || err == nil || !strings.Contains(err.Error(), "is not a valid cron expression (index out of range)") {
		t.Errorf("a panicking parser gave %v, %v; want a refusal", s, err)
	}
}
