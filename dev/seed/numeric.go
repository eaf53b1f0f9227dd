package seed

import (
	"math/big"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Cents is an amount in hundredths, written to numeric(12,2) columns.
//
// pgx encodes a generic numeric through math/big (several allocations and divisions per value);
// during a load Seed registers centsCodec on the connection, which writes the binary numeric of a
// Cents directly. Without it, Cents still works through the NumericValuer path.
type Cents int64

// NumericValue implements pgtype.NumericValuer.
func (c Cents) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: big.NewInt(int64(c)), Exp: -2, Valid: true}, nil
}

// String renders 1234 as "12.34".
func (c Cents) String() string {
	n := int64(c)
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	frac := n % 100
	return sign + itoa(n/100) + "." + string([]byte{byte('0' + frac/10), byte('0' + frac%10)})
}

// centsCodec wraps the numeric codec of a connection and encodes Cents itself.
type centsCodec struct{ pgtype.Codec }

func (c centsCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(Cents); ok && format == pgtype.BinaryFormatCode {
		return centsPlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type centsPlan struct{}

func (centsPlan) Encode(value any, buf []byte) ([]byte, error) {
	return appendNumericCents(buf, int64(value.(Cents))), nil
}

// appendNumericCents appends the binary numeric (dscale 2) of n/100: ndigits, weight, sign,
// dscale, then base-10000 digits, leading and trailing zero digits stripped.
func appendNumericCents(buf []byte, n int64) []byte {
	var sign uint16
	u := uint64(n)
	if n < 0 {
		sign, u = 0x4000, uint64(-n)
	}
	var digits [8]uint16 // integer digits least significant first, then reversed
	nd := 0
	for ip := u / 100; ip > 0; ip /= 10000 {
		digits[nd] = uint16(ip % 10000)
		nd++
	}
	weight := nd - 1
	for i, j := 0, nd-1; i < j; i, j = i+1, j-1 {
		digits[i], digits[j] = digits[j], digits[i]
	}
	if f := u % 100; f != 0 {
		digits[nd] = uint16(f * 100)
		nd++
	}
	start := 0
	for start < nd && digits[start] == 0 {
		start++
		weight--
	}
	for nd > start && digits[nd-1] == 0 {
		nd--
	}
	if start == nd {
		weight, sign = 0, 0
	}
	buf = append(buf, byte((nd-start)>>8), byte(nd-start), byte(uint16(weight)>>8), byte(weight),
		byte(sign>>8), byte(sign), 0, 2)
	for _, d := range digits[start:nd] {
		buf = append(buf, byte(d>>8), byte(d))
	}
	return buf
}

// useCentsCodec registers centsCodec for numeric on conn and returns the function restoring the
// connection's own numeric type.
func useCentsCodec(conn *pgx.Conn) (restore func()) {
	m := conn.TypeMap()
	orig, ok := m.TypeForOID(pgtype.NumericOID)
	if !ok {
		return func() {}
	}
	if _, already := orig.Codec.(centsCodec); already {
		return func() {}
	}
	m.RegisterType(&pgtype.Type{Name: orig.Name, OID: orig.OID, Codec: centsCodec{orig.Codec}})
	return func() { m.RegisterType(orig) }
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
