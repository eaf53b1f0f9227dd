package main

import (
	"context"
	"fmt"
)

// xlsx_split (issue 13): an XLSX export past Excel's 1,048,576 rows a sheet, whose table
// continues on a second sheet. The catalog gets copies of its first products (ids past
// splitIDOffset, skus suffixed "-split") up to xlsxSplitRows, the whole of it is exported,
// then the copies are deleted: the other figures keep their catalog. Its rows/s is compared
// with the 1M-row XLSX export's (xlsx_split_vs_xlsx_ratio).
const (
	xlsxSplitRows = 1_100_000
	splitIDOffset = 1_000_000_000
)

func (b *bench) benchXLSXSplit(ctx context.Context) {
	const name = "xlsx_split"
	conn, err := b.catalogConn(ctx)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	removeCopies := func(ctx context.Context) error {
		_, err := conn.Exec(ctx, `DELETE FROM products WHERE id > $1`, splitIDOffset)
		return err
	}
	if err := removeCopies(ctx); err != nil { // an interrupted run's
		b.fail(name, fmt.Sprintf("removing earlier copies: %v", err))
		return
	}
	var have int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&have); err != nil {
		b.fail(name, err.Error())
		return
	}
	if extra := xlsxSplitRows - have; extra > 0 {
		tag, err := conn.Exec(ctx, `INSERT INTO products (id, sku, name, description, brand, ean, price, currency, stock,
				status, category_id, weight_grams, attributes, created_at, updated_at)
			SELECT id + $1, sku || '-split', name, description, brand, ean, price, currency, stock,
				status, category_id, weight_grams, attributes, created_at, updated_at
			FROM products WHERE id <= $1 ORDER BY id LIMIT $2`, splitIDOffset, extra)
		if err != nil {
			b.fail(name, fmt.Sprintf("copying %d products: %v", extra, err))
			return
		}
		b.logf("%s: %d products copied (ids past %d), deleted after the export", name, tag.RowsAffected(), splitIDOffset)
		defer func() {
			if err := removeCopies(context.WithoutCancel(ctx)); err != nil {
				b.logf("%s: WARNING: the copies are still in the catalog: %v", name, err)
			}
		}()
		if _, err := conn.Exec(ctx, `ANALYZE products`); err != nil {
			b.logf("%s: analyze: %v", name, err)
		}
	}
	res, ok := b.benchExport(ctx, exportSpec{name: name, format: "excel"})
	if ok && res.rows <= 1_048_575 {
		b.logf("%s: WARNING: %d rows fit one sheet: nothing was split", name, res.rows)
	}
}
