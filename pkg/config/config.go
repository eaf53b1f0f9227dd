// Package config reads a service's settings from an injected getenv, with defaults, collecting
// every malformed value so a service reports all of them at once. Values are trimmed; an
// empty value means the default.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env reads settings.
type Env struct {
	getenv func(string) string
	errs   []error
}

// New wraps getenv (os.Getenv in main, a map in tests).
func New(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// String is k's value or def.
func (e *Env) String(k, def string) string {
	if v := strings.TrimSpace(e.getenv(k)); v != "" {
		return v
	}
	return def
}

// Int is k's value as an integer, or def.
func (e *Env) Int(k string, def int) int {
	s := e.String(k, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not an integer", k, s))
		return def
	}
	return n
}

// Duration is k's value as a Go duration ("250ms", "15s"), or def.
func (e *Env) Duration(k string, def time.Duration) time.Duration {
	s := e.String(k, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not a duration (e.g. 15s)", k, s))
		return def
	}
	return d
}

// Bool is k's value as a boolean, or def.
func (e *Env) Bool(k string, def bool) bool {
	s := e.String(k, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: not true or false", k, s))
		return def
	}
	return b
}

// List is k's comma-separated value (blanks dropped), or def's.
func (e *Env) List(k, def string) []string { return SplitList(e.String(k, def)) }

// Err is every malformed value seen so far, joined.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// SplitList splits a comma-separated value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
