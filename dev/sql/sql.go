// Package sql carries the catalog schema (products_manager, CONTRACT.md §7) as a Go string, so
// the seed tool and the tests apply exactly the file that shell scripts run with psql -f.
package sql

import _ "embed"

// Catalog is the content of catalog.sql: idempotent DDL of the products_manager database.
//
//go:embed catalog.sql
var Catalog string
