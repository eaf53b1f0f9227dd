package destination

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/productsmanager/exportplatform/pkg/platform"
)

// sftpSender writes files into a directory of an SFTP server: under a hidden temporary name,
// renamed once complete (posix-rename, atomic on OpenSSH). The server must show the host key
// the platform names.
type sftpSender struct {
	d      platform.Destination
	config *ssh.ClientConfig
	addr   string
	target string
}

// dialTimeout bounds the TCP connection and the SSH handshake.
const dialTimeout = 15 * time.Second

func openSFTP(d platform.Destination, secrets Secrets) (*sftpSender, error) {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
	if err != nil {
		return nil, fmt.Errorf("sftp host_key: %w", err)
	}
	var methods []ssh.AuthMethod
	if d.PrivateKeyRef != "" {
		pem, err := secrets(d.PrivateKeyRef)
		if err != nil {
			return nil, err
		}
		signer, err := ssh.ParsePrivateKey([]byte(pem))
		if err != nil {
			return nil, fmt.Errorf("%w: %s holds no usable private key: %w", ErrSecret, d.PrivateKeyRef, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if d.PasswordRef != "" {
		pw, err := secrets(d.PasswordRef)
		if err != nil {
			return nil, err
		}
		methods = append(methods, ssh.Password(pw))
	}
	addr := net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	return &sftpSender{
		d:      d,
		addr:   addr,
		target: fmt.Sprintf("sftp://%s@%s/%s", d.User, addr, d.Directory),
		config: &ssh.ClientConfig{User: d.User, Auth: methods, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: dialTimeout},
	}, nil
}

func (s *sftpSender) Target() string { return s.target }

// session is one SSH connection with its SFTP client; closing it ends both.
type session struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	stop func() bool
}

func (ss *session) Close() error {
	ss.stop()
	return errors.Join(ss.sftp.Close(), ss.ssh.Close())
}

// connect dials the server; ctx's end closes the connection (and so fails what is under way).
func (s *sftpSender) connect(ctx context.Context) (*session, error) {
	conn, err := (&net.Dialer{Timeout: dialTimeout}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: %w", s.addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, s.addr, s.config)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sftp %s as %s: %w", s.addr, s.d.User, err)
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(c, chans, reqs)
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp %s: starting the sftp subsystem: %w", s.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { client.Close() })
	return &session{ssh: client, sftp: sc, stop: stop}, nil
}

// put writes r as name in the destination's directory through a temporary name.
func (s *sftpSender) put(ss *session, name string, r io.Reader) (int64, string, error) {
	dir := s.d.Directory
	if dir == "" {
		dir = "."
	}
	if err := ss.sftp.MkdirAll(dir); err != nil {
		return 0, "", fmt.Errorf("sftp %s: creating directory %s: %w", s.addr, dir, err)
	}
	final, tmp := path.Join(dir, name), path.Join(dir, "."+name+".part")
	f, err := ss.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, "", fmt.Errorf("sftp %s: creating %s: %w", s.addr, tmp, err)
	}
	n, err := f.ReadFrom(r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = ss.sftp.Remove(tmp)
		return n, "", fmt.Errorf("sftp %s: writing %s: %w", s.addr, tmp, err)
	}
	if err := ss.sftp.PosixRename(tmp, final); err != nil {
		_ = ss.sftp.Remove(tmp)
		return n, "", fmt.Errorf("sftp %s: renaming %s to %s: %w", s.addr, tmp, final, err)
	}
	return n, final, nil
}

func (s *sftpSender) Send(ctx context.Context, name string, r io.Reader, size int64, _ string) (string, error) {
	ss, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	defer ss.Close()
	n, final, err := s.put(ss, name, r)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("sftp %s: wrote %d bytes of %d", s.addr, n, size)
	}
	return fmt.Sprintf("sftp://%s@%s/%s", s.d.User, s.addr, final), nil
}

func (s *sftpSender) Probe(ctx context.Context) []Step {
	var steps []Step
	var ss *session
	step(&steps, "connect", func() error {
		var err error
		ss, err = s.connect(ctx)
		return err
	})
	if ss == nil {
		return steps
	}
	defer ss.Close()
	var final string
	step(&steps, "write", func() error {
		var err error
		_, final, err = s.put(ss, probeName(), bytes.NewReader([]byte("probe\n")))
		return err
	})
	step(&steps, "remove", func() error { return ss.sftp.Remove(final) })
	return steps
}

func (s *sftpSender) Close() error { return nil }
