package job

import (
	"fmt"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// DeliveryStatus is where a completed job's delivery to its platform's destination stands.
type DeliveryStatus string

// Delivery statuses: pending (waiting for its next attempt), delivering (a worker holds it),
// delivered, failed (given up, until someone retries it).
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryDelivering DeliveryStatus = "delivering"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryFailed     DeliveryStatus = "failed"
)

// Delivery is the copy of a completed job's file to its platform's destination (CONTRACT §4,
// `delivery`). The job stays completed whatever happens to it: the file is safe in our bucket.
type Delivery struct {
	Status        DeliveryStatus `json:"status"`
	Attempts      int            `json:"attempts"`
	Target        string         `json:"target"` // where the file went, or goes (no secret in it)
	DeliveredAt   *time.Time     `json:"delivered_at"`
	NextAttemptAt *time.Time     `json:"next_attempt_at"`
	// LastAttemptAt is when the latest attempt began (with DeliveredAt, how long it took).
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastError     *Error     `json:"last_error"`
	// The lease of the attempt under way.
	LeaseOwner     *string    `json:"lease_owner,omitempty"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
}

// DueAt is when a delivery worker should take the delivery up: its next attempt, or the end
// of the lease of an attempt whose worker may have died; nil when nothing is to be done.
func (d *Delivery) DueAt() *time.Time {
	switch {
	case d == nil:
		return nil
	case d.Status == DeliveryPending:
		return d.NextAttemptAt
	case d.Status == DeliveryDelivering:
		return d.LeaseExpiresAt
	}
	return nil
}

// ClaimDelivery takes the delivery's lease for a new attempt: a pending delivery that is due,
// or one whose worker let its lease run out.
type ClaimDelivery struct {
	Owner string
	TTL   time.Duration
	At    time.Time
}

// RenewDelivery extends the lease its holder still holds.
type RenewDelivery struct {
	Owner   string
	Attempt int
	TTL     time.Duration
	At      time.Time
}

// Delivered says the holder's attempt put the file at Target.
type Delivered struct {
	Owner   string
	Attempt int
	Target  string
	At      time.Time
}

// DeliveryAttemptFailed says the holder's attempt failed: it is tried again after RetryAfter,
// or, when RetryAfter is 0 (no retry left, or one cannot help), the delivery fails.
type DeliveryAttemptFailed struct {
	Owner      string
	Attempt    int
	Target     string
	Error      Error
	RetryAfter time.Duration
	At         time.Time
}

// RetryDelivery asks for a new round of attempts of a failed delivery (a person, after fixing
// the destination), starting now.
type RetryDelivery struct {
	By string
	At time.Time
}

func (ClaimDelivery) command() string         { return "claim_delivery" }
func (RenewDelivery) command() string         { return "renew_delivery" }
func (Delivered) command() string             { return "delivered" }
func (DeliveryAttemptFailed) command() string { return "delivery_failed" }
func (RetryDelivery) command() string         { return "retry_delivery" }

// deliveryHolder checks that owner holds the lease of the delivery's attempt.
func deliveryHolder(j Job, owner string, attempt int) error {
	d := j.Delivery
	if j.Deleted() {
		return ErrNotFound
	}
	if d == nil || d.Status != DeliveryDelivering || d.LeaseOwner == nil || *d.LeaseOwner != owner || d.Attempts != attempt {
		return ErrLeaseLost
	}
	return nil
}

func applyDelivery(j Job, c Command) (Job, []events.Event, error) {
	if j.Delivery == nil {
		return j, nil, fmt.Errorf("%w: job %s has no delivery", ErrInvalid, j.ID)
	}
	d := *j.Delivery // the job's copy is replaced, never changed in place
	switch c := c.(type) {
	case ClaimDelivery:
		due := d.DueAt()
		if j.Deleted() || j.FileRemoved || due == nil || due.After(c.At) {
			return j, nil, ErrNotClaimable
		}
		d.Status, d.Attempts = DeliveryDelivering, d.Attempts+1
		d.LeaseOwner, d.LeaseExpiresAt, d.NextAttemptAt, d.LastAttemptAt = ptr(c.Owner), ptr(c.At.Add(c.TTL)), nil, ptr(c.At)
		j.Delivery, j.UpdatedAt = &d, c.At
		return j, nil, nil
	case RenewDelivery:
		if err := deliveryHolder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		d.LeaseExpiresAt = ptr(c.At.Add(c.TTL))
		j.Delivery = &d
		return j, nil, nil // no news
	case Delivered:
		if err := deliveryHolder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		d.Status, d.Target, d.DeliveredAt, d.LastError = DeliveryDelivered, c.Target, ptr(c.At), nil
		d.LeaseOwner, d.LeaseExpiresAt = nil, nil
		j.Delivery, j.UpdatedAt = &d, c.At
		return j, []events.Event{events.ExportDelivered{JobID: j.ID, PlatformID: j.PlatformID, RequestedBy: j.RequestedBy,
			ScheduleID: j.ScheduleID, Target: c.Target, Object: *j.File, Attempt: c.Attempt, DeliveredAt: c.At}}, nil
	case DeliveryAttemptFailed:
		if err := deliveryHolder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		d.LastError, d.LeaseOwner, d.LeaseExpiresAt = ptr(c.Error), nil, nil
		if c.Target != "" {
			d.Target = c.Target
		}
		if c.RetryAfter > 0 {
			d.Status, d.NextAttemptAt = DeliveryPending, ptr(c.At.Add(c.RetryAfter))
			j.Delivery, j.UpdatedAt = &d, c.At
			return j, nil, nil
		}
		d.Status = DeliveryFailed
		j.Delivery, j.UpdatedAt = &d, c.At
		return j, []events.Event{events.ExportDeliveryFailed{JobID: j.ID, PlatformID: j.PlatformID, RequestedBy: j.RequestedBy,
			ScheduleID: j.ScheduleID, Target: d.Target, Attempts: d.Attempts, Error: c.Error, FailedAt: c.At}}, nil
	case RetryDelivery:
		if j.Deleted() {
			return j, nil, ErrNotFound
		}
		if d.Status != DeliveryFailed {
			return j, nil, ErrStale // pending, under way or done: nothing to retry
		}
		if j.FileRemoved {
			return j, nil, ErrFinished // the file is gone: nothing left to deliver
		}
		d.Status, d.Attempts, d.NextAttemptAt = DeliveryPending, 0, ptr(c.At)
		j.Delivery, j.UpdatedAt = &d, c.At
		return j, nil, nil
	}
	return j, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, c)
}
