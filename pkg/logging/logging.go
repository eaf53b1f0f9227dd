// Package logging builds the JSON slog loggers every service uses: one line per record, a
// `service` attribute, snake_case keys, level from LOG_LEVEL.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger writing to w at the given level ("debug", "info", "warn", "error";
// anything else is info).
func New(w io.Writer, level, service string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service)
}

// Discard is a logger that drops everything, for tests that do not care.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
