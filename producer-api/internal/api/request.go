package api

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
)

// exportBody is the export request of CONTRACT §4: the POST body, and what the stream
// endpoints' query parameters decode into. platform_id names a platform whose defaults the
// request goes over (export.Merge).
type exportBody struct {
	export.Request
	PlatformID *string `json:"platform_id"`
	// Webhook is notified of this job alone (besides its platform's webhook, if any).
	Webhook *events.Webhook `json:"webhook"`
}

// badRequest is a request refused before any work: a 400 with its code and the field at fault.
type badRequest struct {
	code, message, field string
}

func (e *badRequest) Error() string { return e.field + ": " + e.message }

func invalid(field, format string, args ...any) *badRequest {
	return &badRequest{code: "invalid_argument", message: fmt.Sprintf(format, args...), field: field}
}

// prepare validates an export request against the catalog's allow-lists and the format's
// options: the one place where a body (POST) or query parameters (streams) become a Spec. A
// refusal is a *badRequest; any other error is internal.
func prepare(req export.Request) (*export.Spec, error) {
	spec, err := export.Prepare(req)
	var ve *export.ValidationError
	switch {
	case errors.As(err, &ve):
		return nil, invalid(ve.Field, "%s", ve.Message)
	case err != nil:
		return nil, fmt.Errorf("validating export request: %w", err)
	}
	return spec, nil
}

// optionNames are the export options a stream takes as top-level query parameters.
var optionNames = export.OptionNames()

// decodeQuery turns a stream's query string into the export request, for format and entity
// taken from the path. The grammar is the body's, flattened:
//
//	fields=sku,name  exclude_fields=description    lists, comma-separated; repeats append
//	status=active    filters[status]=active  filters.status=active      a filter of the entity
//	delimiter=;      options[delimiter]=;    options.delimiter=;        an export option
//	file_name=catalog.csv                                                once at most
//	entity=products  format=csv                    accepted when equal to the path's
//
// Values stay text: pkg/catalog and pkg/export read "10", "true" and "3,7" as the body's
// 10, true and [3, 7]. An empty value counts as absent (what a form sends for a blank input).
// A filter or option given more than once becomes the list of all its comma-separated items,
// which list filters take and scalar ones refuse (prepare names it). Any other parameter is a
// 400 naming it.
func decodeQuery(rawQuery, format, entity string) (exportBody, error) {
	body := exportBody{Request: export.Request{Format: format, Entity: entity}}
	q, err := parseQuery(rawQuery)
	if err != nil {
		return body, err
	}
	e, ok := catalog.Lookup(entity)
	if !ok {
		return body, invalid("entity", "unknown entity %q (one of %s)", entity, strings.Join(catalog.EntityNames(), ", "))
	}
	filterNames := e.FilterNames()
	filters, options := map[string][]string{}, map[string][]string{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first culprit named is the same on every call
	for _, key := range keys {
		values := nonEmpty(q[key])
		if group, name, ok := nested(key); ok {
			if group == "filters" {
				filters[name] = append(filters[name], values...)
			} else {
				options[name] = append(options[name], values...)
			}
			continue
		}
		switch key {
		case "fields":
			body.Fields = append(body.Fields, splitList(values)...)
		case "exclude_fields":
			body.ExcludeFields = append(body.ExcludeFields, splitList(values)...)
		case "file_name":
			if len(values) > 1 {
				return body, invalid(key, "file_name is given %d times", len(values))
			}
			if len(values) == 1 {
				body.FileName = values[0]
			}
		case "entity", "format":
			want := map[string]string{"entity": entity, "format": format}[key]
			for _, v := range values {
				if v != want {
					return body, invalid(key, "%s %q contradicts %q in the path", key, v, want)
				}
			}
		default:
			isFilter, isOption := slices.Contains(filterNames, key), slices.Contains(optionNames, key)
			switch {
			case isFilter && isOption:
				return body, invalid(key, "%q is both a filter and an option: write filters[%[1]s] or options[%[1]s]", key)
			case isFilter:
				filters[key] = append(filters[key], values...)
			case isOption:
				options[key] = append(options[key], values...)
			default:
				return body, invalid(key, "unknown parameter %q (fields, exclude_fields, file_name, the filters of %s: %s; the options: %s)",
					key, entity, strings.Join(filterNames, ", "), strings.Join(optionNames, ", "))
			}
		}
	}
	body.Filters = collapse(filters)
	body.Options = collapse(options)
	return body, nil
}

// repeatedError rewrites prepare's refusal of a filter or option given more than once, whose
// values reached it as a list, so the message says why.
func repeatedError(err error, rawQuery string) error {
	var br *badRequest
	if !errors.As(err, &br) {
		return err
	}
	group, name, ok := strings.Cut(br.field, ".")
	if !ok || (group != "filters" && group != "options") {
		return err
	}
	q, _ := parseQuery(rawQuery)
	n := len(nonEmpty(q[name])) + len(nonEmpty(q[group+"["+name+"]"])) + len(nonEmpty(q[group+"."+name]))
	if n < 2 {
		return err
	}
	return &badRequest{code: br.code, field: br.field,
		message: fmt.Sprintf("%s (given %d times: only list filters take several values)", br.message, n)}
}

// parseQuery is url.ParseQuery with & as the only separator: a semicolon is data, so
// delimiter=; means what it says (WHATWG URL parsing; Go's ParseQuery refuses it since 1.17).
func parseQuery(rawQuery string) (url.Values, error) {
	q := url.Values{}
	for pair := range strings.SplitSeq(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			return nil, &badRequest{code: "invalid_argument", message: fmt.Sprintf("malformed query parameter %q: %v", pair, err)}
		}
		// PostgreSQL text holds neither; refused here, they would fail the query instead.
		if !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
			return nil, &badRequest{code: "invalid_argument", message: fmt.Sprintf("query parameter name %q is not UTF-8 text", key)}
		}
		if !utf8.ValidString(value) || strings.ContainsRune(value, 0) {
			return nil, invalid(key, "the value of %s is not UTF-8 text (or holds a NUL)", key)
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// nested reads "filters[name]", "filters.name", "options[name]" and "options.name".
func nested(key string) (group, name string, ok bool) {
	for _, g := range []string{"filters", "options"} {
		rest, found := strings.CutPrefix(key, g)
		if !found {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]"):
			name = rest[1 : len(rest)-1]
		case strings.HasPrefix(rest, "."):
			name = rest[1:]
		default:
			return "", "", false
		}
		if name == "" || strings.ContainsAny(name, "[].") {
			return "", "", false
		}
		return g, name, true
	}
	return "", "", false
}

func nonEmpty(values []string) []string {
	out := values[:0:0]
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// splitList splits comma-separated values into trimmed, non-empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// collapse gives each name its text as given once, or the list of every item when repeated.
func collapse(m map[string][]string) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for name, values := range m {
		switch len(values) {
		case 0:
		case 1:
			out[name] = values[0]
		default:
			out[name] = splitList(values)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
