package jobstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Page is one page of a keyset-paged list, newest first by (created_at, id): the lists of
// jobs, schedules, platforms and webhook deliveries. Conditions are fixed SQL fragments; their
// values travel as arguments.
type Page struct {
	limit int
	where []string
	args  []any
}

// NewPage starts a page of limit items (50 when not positive) after cursor ("" for the first;
// a cursor EncodeCursor did not make is ErrBadCursor).
func NewPage(limit int, cursor string) (*Page, error) {
	if limit <= 0 {
		limit = 50
	}
	p := &Page{limit: limit, args: []any{limit + 1}} // one more: is there a next page?
	if cursor != "" {
		t, id, err := DecodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		p.args = append(p.args, t, id)
		p.where = append(p.where, fmt.Sprintf("(created_at, id) < ($%d, $%d)", len(p.args)-1, len(p.args)))
	}
	return p, nil
}

// Where adds a condition; %s in cond stands for v's placeholder.
func (p *Page) Where(cond string, v any) {
	p.args = append(p.args, v)
	p.where = append(p.where, fmt.Sprintf(cond, "$"+strconv.Itoa(len(p.args))))
}

// Fixed adds a condition without a value.
func (p *Page) Fixed(cond string) { p.where = append(p.where, cond) }

// Query is the page's statement over selectFrom ("SELECT … FROM table"), and its arguments.
func (p *Page) Query(selectFrom string) (string, []any) {
	where := ""
	if len(p.where) > 0 {
		where = " WHERE " + strings.Join(p.where, " AND ")
	}
	return selectFrom + where + " ORDER BY created_at DESC, id DESC LIMIT $1", p.args
}

// PageOf cuts the rows a page's query returned to the page, and gives the cursor of the next
// page ("" at the end): the (created_at, id) of its last item.
func PageOf[T any](p *Page, rows []T, key func(T) (time.Time, string)) ([]T, string) {
	if len(rows) <= p.limit {
		return rows, ""
	}
	rows = rows[:p.limit]
	return rows, EncodeCursor(key(rows[len(rows)-1]))
}
