package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// errHelp is -h: the usage has been printed, the exit status is 0.
var errHelp = flag.ErrHelp

// usageError is a mistake on the command line (exit status 2). An empty msg means the flag
// package has already said what is wrong.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// flagSet is a FlagSet that also takes the global flags, so they may come before or after the
// command's name.
func (a *app) flagSet(name string, usage func()) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = usage
	// The defaults are resolved after parsing, so that -h never prints the value of a token.
	fs.StringVar(&a.api, "api", a.api, "the API `URL` (default $EXPORT_API_URL, else "+defaultAPI+")")
	fs.StringVar(&a.token, "token", a.token, "the bearer token (default $EXPORT_TOKEN, else one minted from $JWT_SECRET)")
	fs.BoolVar(&a.noColor, "no-color", a.noColor, "no colour (also when $NO_COLOR is set)")
	if a.flagSets != nil {
		*a.flagSets = append(*a.flagSets, fs)
	}
	return fs
}

// Output formats of --output (-o): a table for people, or the API's own JSON.
const (
	outputTable = "table"
	outputJSON  = "json"
)

var outputs = []string{outputTable, outputJSON}

// outputFlags adds --output (-o) table|json and --json, the same as -o json (the older
// spelling, kept), to fs. The result is true when JSON is asked for.
func outputFlags(fs *flag.FlagSet) *bool {
	asJSON := new(bool)
	fs.Var(outputValue{asJSON}, "output", "`format` of the result: table or json (the API's own JSON)")
	fs.Var(outputValue{asJSON}, "o", "short for --output")
	fs.BoolVar(asJSON, "json", false, "the same as --output json")
	return asJSON
}

// outputValue is --output: it sets *json.
type outputValue struct{ json *bool }

func (o outputValue) String() string {
	if o.json != nil && *o.json {
		return outputJSON
	}
	return outputTable
}

func (o outputValue) Set(v string) error {
	switch v {
	case outputTable:
		*o.json = false
	case outputJSON:
		*o.json = true
	default:
		return fmt.Errorf("want %s", strings.Join(outputs, " or "))
	}
	return nil
}

// commandUsage is the usage function of a command's FlagSet.
func commandUsage(fs *flag.FlagSet, synopsis, doc string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: exportctl %s\n\n%s\n\nflags:\n", synopsis, strings.TrimSpace(doc))
		fs.PrintDefaults()
	}
}

// parse parses args allowing flags after positional arguments (exportctl cancel ID --api …),
// and checks the number of positional arguments.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is positional
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < minArgs:
		fs.Usage()
		return nil, usagef("%s: missing argument", fs.Name())
	case maxArgs >= 0 && len(pos) > maxArgs:
		fs.Usage()
		return nil, usagef("%s: unexpected arguments %q", fs.Name(), pos[maxArgs:])
	}
	return pos, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// csvList splits "a, b,,c" into [a b c].
func csvList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// buildObject turns repeated key=value pairs and JSON objects into one JSON object: the body's
// "filters" or "options". Values are typed (see typedValue); a key given twice becomes the list
// of all its values; the JSON objects are merged last and win.
func buildObject(what string, pairs, jsons []string) (map[string]any, error) {
	obj := map[string]any{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--%s %q: want key=value", what, kv)
		}
		val := typedValue(v)
		prev, seen := obj[k]
		if !seen {
			obj[k] = val
			continue
		}
		list, isList := prev.([]any)
		if !isList {
			list = []any{prev}
		}
		if more, ok := val.([]any); ok {
			list = append(list, more...)
		} else {
			list = append(list, val)
		}
		obj[k] = list
	}
	for _, js := range jsons {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(js))
		dec.UseNumber() // keep 12345678901234567890 exact
		if err := dec.Decode(&m); err != nil || dec.More() {
			return nil, usagef("--%s-json %q: want a JSON object", what, js)
		}
		maps.Copy(obj, m)
	}
	if len(obj) == 0 {
		return nil, nil
	}
	return obj, nil
}

// typedValue reads a command-line value as a person means it: "3,7" is the list [3, 7];
// integers and decimals are numbers, true and false booleans, null is null; anything else is
// text. Double quotes keep a value text as it is: search="12" or search="a,b".
func typedValue(v string) any {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	if strings.Contains(v, ",") {
		items := []any{}
		for _, p := range csvList(v) {
			items = append(items, scalar(p))
		}
		return items
	}
	return scalar(strings.TrimSpace(v))
}

func scalar(v string) any {
	switch v {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	// A decimal, but not what ParseFloat also takes and nobody means as a number: "Inf",
	// "NaN", "0x1p3", "1_000".
	if f, err := strconv.ParseFloat(v, 64); err == nil && strings.IndexFunc(v, notDecimal) < 0 {
		return f
	}
	return v
}

func notDecimal(r rune) bool {
	return !(r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' || r == 'e' || r == 'E')
}
