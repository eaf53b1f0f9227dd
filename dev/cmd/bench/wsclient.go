package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// wsConn is the smallest WebSocket client the hub benches need (RFC 6455, client side): a
// handshake with a bearer token, masked text frames out, and frames in with pings answered. It
// saves the dev module a dependency, and its cost per message is a few slices, so 1,000 clients
// on the same two cores as the hub disturb the hub as little as possible.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // the message being reassembled
}

// dialWS opens a WebSocket to ws://addr+path with the token in the Authorization header.
func dialWS(ctx context.Context, addr, path, token string) (*wsConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		path, addr, base64.StdEncoding.EncodeToString(key[:]), token)
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("writing the handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reading the handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		nc.Close()
		return nil, fmt.Errorf("handshake: HTTP %d %s", resp.StatusCode, body)
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsConn{nc: nc, br: br}, nil
}

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// errClosed is returned by read once the server sent a close frame.
var errClosed = errors.New("websocket closed by the server")

// writeFrame sends one masked frame (a client must mask); payloads here are small.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	hdr := make([]byte, 0, 14+len(payload))
	hdr = append(hdr, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	for i, b := range payload {
		hdr = append(hdr, b^mask[i%4])
	}
	_, err := c.nc.Write(hdr)
	return err
}

// writeText sends a text message.
func (c *wsConn) writeText(msg string) error { return c.writeFrame(opText, []byte(msg)) }

// read returns the next data message, answering pings on the way. The slice is reused by the
// next call.
func (c *wsConn) read() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint64(ext[:]))
		}
		if h[1]&0x80 != 0 {
			return nil, errors.New("the server masked a frame")
		}
		if n > 16<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		start := len(c.buf)
		c.buf = append(c.buf, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return nil, err
		}
		switch op {
		case opPing:
			payload := append([]byte(nil), c.buf[start:]...)
			c.buf = c.buf[:start]
			if err := c.writeFrame(opPong, payload); err != nil {
				return nil, err
			}
		case opPong:
			c.buf = c.buf[:start]
		case opClose:
			return nil, errClosed
		case opText, opBinary, opContinuation:
			if fin {
				return c.buf, nil
			}
		default:
			return nil, fmt.Errorf("unknown opcode %#x", op)
		}
	}
}

// close sends a normal close frame and closes the socket without waiting for the answer.
func (c *wsConn) close() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.writeFrame(opClose, []byte{0x03, 0xe8})
	_ = c.nc.Close()
}
