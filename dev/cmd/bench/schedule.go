package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// schedule_fire (issue 9): how late a schedule fires. It creates every-minute schedules (of
// an export that matches no product, so the exporter's work does not disturb the figure),
// waits for one fire of each, and reads each job's lateness from the exports database: the
// time the scheduler decided the fire (the job's created_at) minus its fire time. The
// schedules and their jobs are deleted afterwards.

const scheduleFireCount = 200

func (b *bench) benchScheduleFire(ctx context.Context) {
	const name = "schedule_fire"
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = b.call(context.WithoutCancel(ctx), http.MethodDelete, "/api/v1/exports/schedules/"+id, nil, http.StatusNoContent, nil)
		}
	}()
	// A run stopped before its deferred deletes left its schedules firing every minute: they
	// would fire with this run's and double its load.
	if err := b.removeBenchSchedules(ctx); err != nil {
		b.fail(name, err.Error())
		return
	}
	for i := range scheduleFireCount {
		var s struct {
			ID string `json:"id"`
		}
		err := b.call(ctx, http.MethodPost, "/api/v1/exports/schedules", map[string]any{
			"name": fmt.Sprintf("bench fire %d", i), "cron_expression": "* * * * *", "overlap_policy": "queue",
			"timezone": []string{"Europe/Paris", "America/Sao_Paulo", "Asia/Kolkata", "UTC"}[i%4],
			"export_config": map[string]any{"entity": "products", "format": "csv", "fields": []string{"sku"},
				"filters": map[string]any{"search": "bench-matches-no-product-" + newUUID()}},
		}, http.StatusCreated, &s)
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		ids = append(ids, s.ID)
	}
	conn, err := pgx.Connect(ctx, b.cfg.exportsURL)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	fireAt := time.Now().Truncate(time.Minute).Add(time.Minute)
	b.logf("%s: %d every-minute schedules created; waiting for their fire at %s", name, len(ids), fireAt.Format(time.TimeOnly))
	deadline := fireAt.Add(30 * time.Second)
	var delays []float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		rows, err := conn.Query(ctx, `SELECT extract(epoch FROM created_at - scheduled_for) * 1000 FROM jobs
			WHERE schedule_id = ANY($1) AND scheduled_for = $2`, ids, fireAt)
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		delays, err = pgx.CollectRows(rows, pgx.RowTo[float64])
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		if len(delays) == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			b.fail(name, fmt.Sprintf("%d of %d schedules fired within 30 s of %s", len(delays), len(ids), fireAt.Format(time.TimeOnly)))
			return
		}
	}
	// The jobs go with their figure: they matched nothing, but they are ours.
	rows, err := conn.Query(ctx, `SELECT id::text FROM jobs WHERE schedule_id = ANY($1)`, ids)
	if err == nil {
		if jobs, err := pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			defer func() {
				for _, j := range jobs {
					b.remove(context.WithoutCancel(ctx), j)
				}
			}()
		}
	}
	slices.Sort(delays)
	q := func(p float64) float64 { return delays[min(len(delays)-1, int(p*float64(len(delays))))] }
	b.emit("schedule_fire_delay_p50_ms", q(0.50), "ms", 1)
	b.emit("schedule_fire_delay_p99_ms", q(0.99), "ms", 1)
	b.emit("schedule_fire_delay_max_ms", delays[len(delays)-1], "ms", 1)
}

// removeBenchSchedules deletes the schedules an interrupted schedule_fire run left behind.
func (b *bench) removeBenchSchedules(ctx context.Context) error {
	var stale []string
	for cursor := ""; ; {
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		q := url.Values{"limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := b.call(ctx, http.MethodGet, "/api/v1/exports/schedules?"+q.Encode(), nil, http.StatusOK, &page); err != nil {
			return fmt.Errorf("listing leftover bench schedules: %w", err)
		}
		for _, s := range page.Items {
			if strings.HasPrefix(s.Name, "bench fire ") {
				stale = append(stale, s.ID)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for _, id := range stale {
		if err := b.call(ctx, http.MethodDelete, "/api/v1/exports/schedules/"+id, nil, http.StatusNoContent, nil); err != nil {
			return fmt.Errorf("deleting leftover bench schedule: %w", err)
		}
	}
	if len(stale) > 0 {
		b.logf("schedule_fire: deleted %d schedules left by an interrupted run", len(stale))
	}
	return nil
}
