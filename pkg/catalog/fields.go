// Package catalog reads the Products Manager catalog (database products_manager) for exports:
// the registry of exportable fields per entity, the filters users may apply, and a row cursor
// that streams matching rows without buffering the result.
//
// Invariant: every SQL fragment comes from an allow-list in this package (field expressions,
// filter templates); user input only ever travels as query arguments.
//
// Cells are returned as text, already formatted for export (numbers as plain decimals,
// timestamps as RFC 3339 UTC, JSON as JSON), with nil for NULL; Field.Type tells writers how
// to type them.
package catalog

import (
	"fmt"
	"slices"
)

// Type is how a field's text is to be read.
type Type string

// Field types.
const (
	TypeText      Type = "text"
	TypeInteger   Type = "integer"
	TypeDecimal   Type = "decimal"
	TypeBoolean   Type = "boolean"
	TypeTimestamp Type = "timestamp"
	TypeJSON      Type = "json"
)

// Field is one exportable column.
type Field struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description"`
	Default     bool   `json:"default"`
	expr        string
}

// Entity is an exportable kind of record.
type Entity struct {
	Name   string
	Fields []Field
	// Relations are the nested values include_relations adds after the fields.
	Relations []Relation
	// from is the FROM clause with its joins. A "{{range COL}}" in a join's ON clause, where
	// COL equals the key, bounds COL as a range bounds the key: PostgreSQL does not carry an
	// inequality across a join, and a merge join would read the joined index from its start
	// for every range.
	from  string
	order string // the row order and key: a unique bigint column
	alias string
}

// Relation is a nested value added to each row, built here from plain columns (PostgreSQL's
// json_build_object and json_agg cost more than the rest of the export: 12.4 s of a million
// products' suppliers against 4.1 s for the same columns as text). It is either
//   - a row relation: cols are expressions over the entity's own joins, selected with the
//     row; value builds the cell from them, or
//   - a stream relation: one more query, run once for the whole export beside the rows' own,
//     answers (key, cols…) for the keys the entity's filters select, ordered by key; each of a
//     key's rows gives one value, and list makes them a JSON array (empty otherwise, or the
//     one value). The two cursors are read in step, merged by key: one round trip for the
//     whole export, never one query per row or batch.
type Relation struct {
	Field
	cols  []string
	value func(dst []byte, cols [][]byte) ([]byte, bool) // false: NULL

	stream *relationStream
}

// relationStream is a stream relation's query: "SELECT key, cols… FROM from", restricted to
// the selected keys when the export is filtered, then tail (GROUP BY, ORDER BY key, …).
type relationStream struct {
	sql   string // SELECT … FROM …
	key   string // the key column, compared with the entity's key
	tail  string // GROUP BY …, ORDER BY key …
	list  bool   // a JSON array of the key's values
	empty []byte // the value for a key without rows
}

// ErrUnknownField is wrapped by Resolve's error; the message names the field.
type ErrUnknownField struct{ Name string }

func (e ErrUnknownField) Error() string { return fmt.Sprintf("unknown field %q", e.Name) }

const ts = `to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`

func tsExpr(col string) string { return fmt.Sprintf(ts, col) }

// Products is the products entity: one row per product with its category and primary supplier.
var Products = &Entity{
	Name:  "products",
	alias: "p",
	// The primary supplier is a plain join, which keeps the merge plan that streams from the
	// first row; should the catalog ever hold two primaries for a product, Rows keeps the first
	// row of each key and drops the repeat.
	from: `products p
		LEFT JOIN categories c ON c.id = p.category_id
		LEFT JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary{{range ps.product_id}}
		LEFT JOIN suppliers s ON s.id = ps.supplier_id`,
	Relations: []Relation{
		{Field: Field{"category", TypeJSON, "The product's category: id, parent_id, name, slug, path", false, ""},
			cols: []string{"c.id::text", "c.parent_id::text", "c.name", "c.slug", "c.path"},
			value: func(dst []byte, c [][]byte) ([]byte, bool) {
				if c[0] == nil {
					return dst, false
				}
				return appendObject(dst, []string{"id", "parent_id", "name", "slug", "path"},
					[]Type{TypeInteger, TypeInteger, TypeText, TypeText, TypeText}, c), true
			}},
		{Field: Field{"suppliers", TypeJSON, "Every supplier of the product, primary first", false, ""},
			stream: &relationStream{
				sql: `SELECT ps.product_id::text, s.id::text, s.code, s.name, ps.supplier_sku, ps.cost_price::text,
					ps.lead_time_days::text, ps.is_primary::text FROM product_suppliers ps JOIN suppliers s ON s.id = ps.supplier_id`,
				key:  "ps.product_id",
				tail: " ORDER BY ps.product_id, ps.is_primary DESC, s.id",
				list: true, empty: []byte("[]"),
			},
			value: func(dst []byte, c [][]byte) ([]byte, bool) {
				return appendObject(dst, []string{"supplier_id", "code", "name", "supplier_sku", "cost_price", "lead_time_days", "is_primary"},
					[]Type{TypeInteger, TypeText, TypeText, TypeText, TypeDecimal, TypeInteger, TypeBoolean}, c), true
			}},
	},
	order: "p.id",
	Fields: []Field{
		{"id", TypeInteger, "Product identifier", true, "p.id::text"},
		{"sku", TypeText, "Stock keeping unit, unique", true, "p.sku"},
		{"name", TypeText, "Product name", true, "p.name"},
		{"description", TypeText, "Long description", true, "p.description"},
		{"brand", TypeText, "Brand", true, "p.brand"},
		{"ean", TypeText, "EAN-13 barcode", true, "p.ean"},
		{"price", TypeDecimal, "Selling price, two decimals", true, "p.price::text"},
		{"currency", TypeText, "ISO 4217 currency code", true, "p.currency"},
		{"stock", TypeInteger, "Units in stock", true, "p.stock::text"},
		{"status", TypeText, "active, draft or archived", true, "p.status"},
		{"category_id", TypeInteger, "Category identifier", true, "p.category_id::text"},
		{"category_name", TypeText, "Category name", true, "c.name"},
		{"category_path", TypeText, "Category path from the root (Home > Audio)", false, "c.path"},
		{"supplier_id", TypeInteger, "Primary supplier identifier", true, "s.id::text"},
		{"supplier_name", TypeText, "Primary supplier name", true, "s.name"},
		{"weight_grams", TypeInteger, "Weight in grams", false, "p.weight_grams::text"},
		{"attributes", TypeJSON, "Free attributes (JSON object)", false, "p.attributes::text"},
		{"created_at", TypeTimestamp, "Creation time, UTC", true, tsExpr("p.created_at")},
		{"updated_at", TypeTimestamp, "Last update time, UTC", true, tsExpr("p.updated_at")},
	},
}

// Suppliers is the suppliers entity.
var Suppliers = &Entity{
	Name:  "suppliers",
	alias: "s",
	from:  `suppliers s`,
	order: "s.id",
	Fields: []Field{
		{"id", TypeInteger, "Supplier identifier", true, "s.id::text"},
		{"code", TypeText, "Supplier code, unique", true, "s.code"},
		{"name", TypeText, "Supplier name", true, "s.name"},
		{"email", TypeText, "Contact e-mail", true, "s.email"},
		{"phone", TypeText, "Contact phone", true, "s.phone"},
		{"country", TypeText, "ISO 3166-1 alpha-2 country", true, "s.country"},
		{"city", TypeText, "City", true, "s.city"},
		{"active", TypeBoolean, "Whether the supplier is active", true, "s.active::text"},
		{"created_at", TypeTimestamp, "Creation time, UTC", true, tsExpr("s.created_at")},
		{"updated_at", TypeTimestamp, "Last update time, UTC", true, tsExpr("s.updated_at")},
	},
	Relations: []Relation{
		{Field: Field{"product_count", TypeInteger, "How many products the supplier supplies", false, ""},
			stream: &relationStream{
				// Qualified: ORDER BY supplier_id would sort by the text output column of that name.
				sql:   `SELECT ps.supplier_id::text, count(*)::text FROM product_suppliers ps`,
				key:   "ps.supplier_id",
				tail:  " GROUP BY ps.supplier_id ORDER BY ps.supplier_id",
				empty: []byte("0"),
			},
			value: func(dst []byte, c [][]byte) ([]byte, bool) { return append(dst, c[0]...), true }},
	},
}

// Categories is the category tree. It is not an export entity of its own (CONTRACT §4 names
// products and suppliers) but a workbook may carry it as a sheet.
var Categories = &Entity{
	Name:  "categories",
	alias: "c",
	from:  `categories c`,
	order: "c.id",
	Fields: []Field{
		{"id", TypeInteger, "Category identifier", true, "c.id::text"},
		{"parent_id", TypeInteger, "Parent category identifier, empty at the root", true, "c.parent_id::text"},
		{"name", TypeText, "Category name", true, "c.name"},
		{"slug", TypeText, "URL slug", true, "c.slug"},
		{"path", TypeText, "Path from the root (Home > Audio)", true, "c.path"},
	},
}

// LookupSheet returns an entity a workbook sheet may hold: an export entity or categories.
func LookupSheet(name string) (*Entity, bool) {
	if name == Categories.Name {
		return Categories, true
	}
	return Lookup(name)
}

var entities = map[string]*Entity{Products.Name: Products, Suppliers.Name: Suppliers}

// Lookup returns the entity named name.
func Lookup(name string) (*Entity, bool) {
	e, ok := entities[name]
	return e, ok
}

// EntityNames lists the exportable entities.
func EntityNames() []string { return []string{Products.Name, Suppliers.Name} }

// Field returns the field named name.
func (e *Entity) Field(name string) (Field, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Resolve turns a request's fields and exclude_fields into the columns to export, in order:
// fields (or the default set when empty) minus exclude_fields. An unknown or repeated name is
// an error naming it.
func (e *Entity) Resolve(fields, exclude []string) ([]Field, error) {
	var out []Field
	if len(fields) == 0 {
		for _, f := range e.Fields {
			if f.Default {
				out = append(out, f)
			}
		}
	} else {
		seen := map[string]bool{}
		for _, name := range fields {
			f, ok := e.Field(name)
			if !ok {
				return nil, ErrUnknownField{Name: name}
			}
			if seen[name] {
				return nil, fmt.Errorf("field %q listed twice", name)
			}
			seen[name] = true
			out = append(out, f)
		}
	}
	for _, name := range exclude {
		if _, ok := e.Field(name); !ok {
			return nil, ErrUnknownField{Name: name}
		}
		out = slices.DeleteFunc(out, func(f Field) bool { return f.Name == name })
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no field left to export")
	}
	return out, nil
}
