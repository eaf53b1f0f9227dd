package main

import (
	"fmt"
	"strings"
)

// derived prints the figures computed from two measurements.
func (b *bench) derived() {
	f := b.figures
	if csv, ok := f["csv_rows_per_s"]; ok {
		if cp, ok := f["copy_ceiling_rows_per_s"]; ok && cp > 0 {
			b.emit("csv_vs_copy_ratio", csv/cp, "ratio", 2)
		}
	}
	for _, format := range []string{"csv", "jsonl", "xlsx"} {
		if big, ok := f[format+"_exporter_peak_rss_mib"]; ok {
			if small, ok := f[format+"_100k_exporter_peak_rss_mib"]; ok && small > 0 {
				b.emit(format+"_peak_rss_1m_vs_100k_ratio", big/small, "ratio", 2)
			}
		}
	}
	ratio := func(name, num, den string) {
		if n, ok := f[num]; ok {
			if d, ok := f[den]; ok && d > 0 {
				b.emit(name, n/d, "ratio", 2)
			}
		}
	}
	ratio("xlsx_vs_csv_ratio", "xlsx_rows_per_s", "csv_rows_per_s")
	ratio("xlsx_split_vs_xlsx_ratio", "xlsx_split_rows_per_s", "xlsx_rows_per_s")
	ratio("ranges_2_vs_1_ratio", "ranges_2_exporters_rows_per_s", "ranges_1_exporters_rows_per_s")
	ratio("ranges_2_vs_csv_ratio", "ranges_2_exporters_rows_per_s", "csv_rows_per_s")
	ratio("json_relations_vs_jsonl_ratio", "json_relations_rows_per_s", "jsonl_rows_per_s")
	if tmp, ok := f["xlsx_exporter_temp_disk_mib"]; ok {
		if size, ok := f["xlsx_file_bytes"]; ok && size > 0 {
			b.emit("xlsx_temp_disk_vs_file_ratio", tmp*(1<<20)/size, "ratio", 2)
		}
	}
}

// target is one goal of an issue: figure op want.
type target struct {
	label  string
	figure string
	atMost bool // the figure must be ≤ want (else ≥)
	want   float64
}

var targets = []target{
	{label: "CSV export ≥ 250,000 rows/s", figure: "csv_rows_per_s", want: 250000},
	{label: "CSV export ≥ 0.5 × COPY", figure: "csv_vs_copy_ratio", want: 0.5},
	{label: "JSON Lines export ≥ 200,000 rows/s", figure: "jsonl_rows_per_s", want: 200000},
	{label: "XLSX export ≥ 60,000 rows/s", figure: "xlsx_rows_per_s", want: 60000},
	{label: "exporter peak RSS at 1M ≤ 96 MiB", figure: "csv_exporter_peak_rss_mib", atMost: true, want: 96},
	{label: "exporter peak RSS at 1M ≤ 1.1 × at 100k", figure: "csv_peak_rss_1m_vs_100k_ratio", atMost: true, want: 1.1},
	{label: "CSV export ≥ 1.0 × COPY (issue 13)", figure: "csv_vs_copy_ratio", want: 1.0},
	{label: "XLSX ≥ 0.5 × CSV rows/s (issue 13)", figure: "xlsx_vs_csv_ratio", want: 0.5},
	{label: "XLSX 1.1M (2 sheets) ≥ 0.9 × 1M rows/s (13)", figure: "xlsx_split_vs_xlsx_ratio", want: 0.9},
	{label: "2 exporters ≥ 1.6 × 1, one split CSV (13)", figure: "ranges_2_vs_1_ratio", want: 1.6},
	{label: "XLSX temp disk ≤ its file (issue 13)", figure: "xlsx_temp_disk_vs_file_ratio", atMost: true, want: 1},
	{label: "JSON relations ≥ 0.5 × JSON Lines (13)", figure: "json_relations_vs_jsonl_ratio", want: 0.5},
	{label: "JSON Lines peak RSS at 1M ≤ 96 MiB", figure: "jsonl_exporter_peak_rss_mib", atMost: true, want: 96},
	{label: "JSON Lines RSS 1M ≤ 1.1 × 100k", figure: "jsonl_peak_rss_1m_vs_100k_ratio", atMost: true, want: 1.1},
	{label: "XLSX peak RSS at 1M ≤ 96 MiB", figure: "xlsx_exporter_peak_rss_mib", atMost: true, want: 96},
	{label: "XLSX RSS 1M ≤ 1.1 × 100k", figure: "xlsx_peak_rss_1m_vs_100k_ratio", atMost: true, want: 1.1},
	{label: "exporter peak RSS, 1M-row SFTP delivery ≤ 96 MiB", figure: "delivery_sftp_exporter_peak_rss_mib", atMost: true, want: 96},
	{label: "exporter peak RSS, 1M-row S3 delivery ≤ 96 MiB", figure: "delivery_s3_exporter_peak_rss_mib", atMost: true, want: 96},
	{label: "CSV stream TTFB ≤ 100 ms", figure: "csv_stream_ttfb_ms", atMost: true, want: 100},
	{label: "JSON Lines stream TTFB ≤ 100 ms", figure: "jsonl_stream_ttfb_ms", atMost: true, want: 100},
	{label: "hub produce→push p99 ≤ 250 ms (1k clients)", figure: "hub_latency_p99_ms", atMost: true, want: 250},
	{label: "hub RSS with 10k idle clients ≤ 400 MB", figure: "hub_idle_peak_rss_mib", atMost: true, want: 400e6 / (1 << 20)},
	{label: "schedule fires ≤ 1 s late, p99 (200 at once)", figure: "schedule_fire_delay_p99_ms", atMost: true, want: 1000},
	{label: "auth + rate limit add ≤ 2 ms, p99 (issue 11)", figure: "api_auth_added_p99_ms", atMost: true, want: 2},
}

// summary compares the figures with the targets, on stderr.
func (b *bench) summary() {
	var sb strings.Builder
	met, missed, absent := 0, 0, 0
	fmt.Fprintln(&sb, "[bench] ==== summary against the targets (issues 3, 4, 9, 11, 12 and 13); the bench asserts nothing")
	for _, t := range targets {
		v, ok := b.figures[t.figure]
		var verdict string
		switch {
		case !ok:
			verdict = "not measured"
			absent++
		case (t.atMost && v <= t.want) || (!t.atMost && v >= t.want):
			verdict = "met"
			met++
		default:
			verdict = "MISSED"
			missed++
		}
		val := "-"
		if ok {
			val = fmt.Sprintf("%.2f", v)
			if v >= 1000 {
				val = fmt.Sprintf("%.0f", v)
			}
		}
		fmt.Fprintf(&sb, "[bench]   %-42s %-28s %12s  %s\n", t.label, t.figure, val, verdict)
	}
	for _, name := range benches {
		if why, ok := b.failed[name]; ok {
			fmt.Fprintf(&sb, "[bench]   %s failed: %s\n", name, why)
		}
	}
	fmt.Fprintf(&sb, "[bench] %d met, %d missed, %d not measured\n", met, missed, absent)
	fmt.Fprint(b.stderr, sb.String())
}
