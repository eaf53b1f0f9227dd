package catalog

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FilterError is a filter value that cannot be used; Filter names it (e.g. "price_min").
type FilterError struct {
	Filter  string
	Message string
}

func (e *FilterError) Error() string { return fmt.Sprintf("filter %s: %s", e.Filter, e.Message) }

// filterKind is how a filter's value is parsed.
type filterKind int

const (
	kindString filterKind = iota
	kindStringList
	kindIntList
	kindNumber
	kindTime
	kindBool
)

// filterDef is one allowed filter: its value kind and the SQL condition with a single
// placeholder written %s, replaced by the argument's position.
type filterDef struct {
	kind filterKind
	cond string
}

var productFilters = map[string]filterDef{
	"status":        {kindStringList, "p.status = ANY(%s)"},
	"category_id":   {kindIntList, "p.category_id = ANY(%s)"},
	"supplier_id":   {kindIntList, "EXISTS (SELECT 1 FROM product_suppliers fx WHERE fx.product_id = p.id AND fx.supplier_id = ANY(%s))"},
	"brand":         {kindString, "p.brand = %s"},
	"price_min":     {kindNumber, "p.price >= %s"},
	"price_max":     {kindNumber, "p.price <= %s"},
	"updated_since": {kindTime, "p.updated_at >= %s"},
	"search":        {kindString, "(p.name ILIKE %[1]s OR p.sku ILIKE %[1]s OR p.ean ILIKE %[1]s)"},
}

var supplierFilters = map[string]filterDef{
	"country":       {kindStringList, "s.country = ANY(%s)"},
	"active":        {kindBool, "s.active = %s"},
	"updated_since": {kindTime, "s.updated_at >= %s"},
	"search":        {kindString, "(s.name ILIKE %[1]s OR s.code ILIKE %[1]s OR s.email ILIKE %[1]s)"},
}

var validStatuses = map[string]bool{"active": true, "draft": true, "archived": true}

func (e *Entity) filters() map[string]filterDef {
	if e == Suppliers {
		return supplierFilters
	}
	return productFilters
}

// FilterNames lists the filters an entity accepts.
func (e *Entity) FilterNames() []string {
	var out []string
	for name := range e.filters() {
		out = append(out, name)
	}
	return out
}

// conditions validates filters and returns the WHERE conditions and their arguments.
func (e *Entity) conditions(filters map[string]any) ([]string, []any, error) {
	defs := e.filters()
	var conds []string
	var args []any
	names := make([]string, 0, len(filters))
	for name := range filters {
		names = append(names, name)
	}
	sortStrings(names) // a stable SQL text for a given request
	for _, name := range names {
		raw := filters[name]
		def, ok := defs[name]
		if !ok {
			return nil, nil, &FilterError{Filter: name, Message: fmt.Sprintf("unknown filter for %s", e.Name)}
		}
		if raw == nil {
			continue
		}
		v, err := parseFilter(name, def.kind, raw)
		if err != nil {
			return nil, nil, err
		}
		if name == "status" {
			for _, s := range v.([]string) {
				if !validStatuses[s] {
					return nil, nil, &FilterError{Filter: name, Message: fmt.Sprintf("%q is not one of active, draft, archived", s)}
				}
			}
		}
		if name == "search" {
			v = "%" + escapeLike(v.(string)) + "%"
		}
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(def.cond, "$"+strconv.Itoa(len(args))))
	}
	if lo, hi := filters["price_min"], filters["price_max"]; lo != nil && hi != nil {
		l, _ := toFloat(lo)
		h, _ := toFloat(hi)
		if l > h {
			return nil, nil, &FilterError{Filter: "price_min", Message: "is greater than price_max"}
		}
	}
	return conds, args, nil
}

func parseFilter(name string, kind filterKind, raw any) (any, error) {
	bad := func(msg string) error { return &FilterError{Filter: name, Message: msg} }
	switch kind {
	case kindString:
		s, ok := raw.(string)
		if !ok {
			return nil, bad("must be a string")
		}
		if len(s) > 200 {
			return nil, bad("is longer than 200 characters")
		}
		return s, nil
	case kindStringList:
		items, err := listOf(raw)
		if err != nil {
			return nil, bad(err.Error())
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			s, ok := it.(string)
			if !ok || s == "" {
				return nil, bad("must be a string or a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	case kindIntList:
		items, err := listOf(raw)
		if err != nil {
			return nil, bad(err.Error())
		}
		out := make([]int64, 0, len(items))
		for _, it := range items {
			f, ok := toFloat(it)
			if !ok || f != math.Trunc(f) || f < 1 || f > 1<<53 {
				return nil, bad("must be a positive integer or a list of them")
			}
			out = append(out, int64(f))
		}
		return out, nil
	case kindNumber:
		f, ok := toFloat(raw)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e10 {
			return nil, bad("must be a number between 0 and 10000000000")
		}
		return f, nil
	case kindTime:
		s, ok := raw.(string)
		if !ok {
			return nil, bad("must be an RFC 3339 timestamp string")
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, bad(fmt.Sprintf("%q is not an RFC 3339 timestamp (e.g. 2026-01-01T00:00:00Z)", s))
		}
		return t, nil
	case kindBool:
		switch v := raw.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("must be true or false")
			}
			return b, nil
		}
		return nil, bad("must be true or false")
	}
	return nil, bad("unsupported")
}

// listOf accepts a JSON list, a single value, or a comma-separated string (query parameters).
func listOf(raw any) ([]any, error) {
	switch v := raw.(type) {
	case []any:
		if len(v) == 0 || len(v) > 1000 {
			return nil, fmt.Errorf("must list between 1 and 1000 values")
		}
		return v, nil
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return listOf(out)
	case []int64:
		out := make([]any, len(v))
		for i, n := range v {
			out[i] = float64(n)
		}
		return listOf(out)
	case string:
		parts := strings.Split(v, ",")
		out := make([]any, 0, len(parts))
		for _, p := range parts {
			out = append(out, strings.TrimSpace(p))
		}
		return listOf(out)
	case float64, int, int64, bool:
		return []any{v}, nil
	}
	return nil, fmt.Errorf("must be a value or a list of values")
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	return 0, false
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
