package seed

import "github.com/jackc/pgx/v5"

// The generators Seed streams, for tests and benchmarks elsewhere that want the catalog rows
// without a database. Each yields rows in the order of its *Columns variable. Text columns may
// come as []byte and the price columns as Cents; the values of a row are only valid until the
// next call to Next (buffers are reused).

// CategoryRows yields the categories rows (the same for every N).
func CategoryRows() pgx.CopyFromSource { return &categorySource{} }

// SupplierRows yields the suppliers rows of a catalog of the given number of products.
func SupplierRows(products int) pgx.CopyFromSource {
	return newSupplierSource(int64(SupplierCount(products)))
}

// ProductRows yields the products rows 1..products.
func ProductRows(products int) pgx.CopyFromSource { return newProductSource(int64(max(products, 0))) }

// LinkRows yields the product_suppliers rows of a catalog of the given number of products.
func LinkRows(products int) pgx.CopyFromSource {
	return newLinkSource(int64(max(products, 0)), int64(SupplierCount(products)))
}
