package catalog

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	kindInt
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
	"status":      {kindStringList, "p.status = ANY(%s)"},
	"category_id": {kindIntList, "p.category_id = ANY(%s)"},
	// include_subcategories changes how category_id is applied (see conditions); alone it selects
	// nothing more and nothing less.
	"include_subcategories": {kindBool, ""},
	"supplier_id":           {kindIntList, "EXISTS (SELECT 1 FROM product_suppliers fx WHERE fx.product_id = p.id AND fx.supplier_id = ANY(%s))"},
	"brand":                 {kindString, "p.brand = %s"},
	"price_min":             {kindNumber, "p.price >= %s"},
	"price_max":             {kindNumber, "p.price <= %s"},
	"stock_min":             {kindInt, "p.stock >= %s"},
	"stock_max":             {kindInt, "p.stock <= %s"},
	"updated_since":         {kindTime, "p.updated_at >= %s"},
	"created_since":         {kindTime, "p.created_at >= %s"},
	"search":                {kindString, "(p.name ILIKE %[1]s OR p.sku ILIKE %[1]s OR p.ean ILIKE %[1]s)"},
	"ids":                   {kindIntList, "p.id = ANY(%s)"},
}

// categoryTree is category_id with include_subcategories: the listed categories and every
// category below them.
const categoryTree = `p.category_id IN (WITH RECURSIVE tree(id) AS (
	SELECT id FROM categories WHERE id = ANY(%s)
	UNION SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id)
	SELECT id FROM tree)`

var supplierFilters = map[string]filterDef{
	"country":       {kindStringList, "s.country = ANY(%s)"},
	"active":        {kindBool, "s.active = %s"},
	"updated_since": {kindTime, "s.updated_at >= %s"},
	"search":        {kindString, "(s.name ILIKE %[1]s OR s.code ILIKE %[1]s OR s.email ILIKE %[1]s)"},
}

var validStatuses = map[string]bool{"active": true, "draft": true, "archived": true}

func (e *Entity) filters() map[string]filterDef {
	switch e {
	case Products:
		return productFilters
	case Suppliers:
		return supplierFilters
	}
	return nil
}

// FilterNames lists the filters an entity accepts.
func (e *Entity) FilterNames() []string {
	var out []string
	for name := range e.filters() {
		out = append(out, name)
	}
	sortStrings(out)
	return out
}

// conditions validates filters and returns the WHERE conditions and their arguments.
func (e *Entity) conditions(filters map[string]any) ([]string, []any, map[string]any, error) {
	defs := e.filters()
	var conds []string
	var args []any
	normal := map[string]any{}
	names := make([]string, 0, len(filters))
	for name := range filters {
		names = append(names, name)
	}
	sortStrings(names) // a stable SQL text for a given request
	for _, name := range names {
		raw := filters[name]
		def, ok := defs[name]
		if !ok {
			return nil, nil, nil, &FilterError{Filter: name, Message: fmt.Sprintf("unknown filter for %s", e.Name)}
		}
		if raw == nil {
			continue
		}
		v, err := parseFilter(name, def.kind, raw)
		if err != nil {
			return nil, nil, nil, err
		}
		if name == "status" {
			for _, s := range v.([]string) {
				if !validStatuses[s] {
					return nil, nil, nil, &FilterError{Filter: name, Message: fmt.Sprintf("%q is not one of active, draft, archived", s)}
				}
			}
		}
		if name == "country" {
			for i, c := range v.([]string) {
				if !isCountry(c) {
					return nil, nil, nil, &FilterError{Filter: name, Message: fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 code (e.g. FR)", c)}
				}
				v.([]string)[i] = strings.ToUpper(c)
			}
		}
		normal[name] = normalValue(raw, v)
		if name == "search" {
			v = "%" + escapeLike(v.(string)) + "%"
		}
		cond := def.cond
		if cond == "" {
			continue
		}
		if name == "category_id" && subcategories(filters) {
			cond = categoryTree
		}
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, "$"+strconv.Itoa(len(args))))
	}
	for _, r := range [][2]string{{"price_min", "price_max"}, {"stock_min", "stock_max"}} {
		lo, hi := filters[r[0]], filters[r[1]]
		if lo == nil || hi == nil {
			continue
		}
		l, _ := toFloat(lo)
		h, _ := toFloat(hi)
		if l > h {
			return nil, nil, nil, &FilterError{Filter: r[0], Message: "is greater than " + r[1]}
		}
	}
	return conds, args, normal, nil
}

// normalValue is a parsed filter as a job records it: times in RFC 3339, and a list given as a
// single value kept single (the job shows what was asked, minus padding and spelling).
func normalValue(raw, v any) any {
	switch p := v.(type) {
	case time.Time:
		return p.Format(time.RFC3339Nano)
	case []string:
		if _, list := raw.([]any); !list && len(p) == 1 {
			return p[0]
		}
	case []int64:
		if _, list := raw.([]any); !list && len(p) == 1 {
			return p[0]
		}
	}
	return v
}

func subcategories(filters map[string]any) bool {
	v, err := parseFilter("include_subcategories", kindBool, filters["include_subcategories"])
	return err == nil && v.(bool)
}

// printable: PostgreSQL text takes any UTF-8 but NUL.
func printable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func isCountry(s string) bool {
	if len(s) != 2 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
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
		if !printable(s) {
			return nil, bad("must be UTF-8 text without NUL characters")
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
			if !ok || s == "" || !printable(s) {
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
	case kindInt:
		f, ok := toFloat(raw)
		if !ok || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
			return nil, bad("must be a whole number")
		}
		return int64(f), nil
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
