package seed

import (
	"math/rand/v2"
	"time"
)

// Every row draws from its own PCG stream, seeded from (stream salt, row id): a row does not
// depend on the rows before it, so the same N always yields byte-identical data, product i is the
// same whatever N is (only its supplier ids depend on N), and generators never share state.
const (
	saltCategory = 0x43415445474f5259 // product core: category, price, supplier count
	saltProduct  = 0x50524f4455435453 // product text and the other columns
	saltLinks    = 0x4c494e4b53535550 // product_suppliers rows
	saltSupplier = 0x535550504c494552 // suppliers rows
)

// The generated timestamps fall in [timeStart, timeEnd): fixed, never time.Now.
var (
	timeStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	timeEnd   = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
)

type rng struct {
	pcg rand.PCG
	*rand.Rand
}

func newRNG() *rng {
	g := &rng{}
	g.Rand = rand.New(&g.pcg)
	return g
}

// reset positions the stream at the start of row id of the given salt.
func (g *rng) reset(salt uint64, id int64) {
	g.pcg.Seed(splitmix64(salt^uint64(id)), splitmix64(uint64(id)+salt*0x9e3779b97f4a7c15))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pct is true with probability p percent.
func (g *rng) pct(p int) bool { return g.IntN(100) < p }

// pick returns a random element.
func pick[T any](g *rng, s []T) T { return s[g.IntN(len(s))] }

// timestamps returns created_at and updated_at, updated_at >= created_at, microsecond precision.
func (g *rng) timestamps() (time.Time, time.Time) {
	start, end := timeStart.UnixMicro(), timeEnd.UnixMicro()
	created := start + g.Int64N(end-start)
	updated := created
	if !g.pct(15) { // 15% never updated since creation
		updated += g.Int64N(end - created)
	}
	return time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
}
