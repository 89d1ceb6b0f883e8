package envoysim

// A lean gRPC client transport: one HTTP/2 connection carrying one
// streaming call, as an Envoy's ADS connection does.
//
// The load generator runs thousands of simulated Envoys on the two cores
// the server is measured on. gRPC-Go's client is built for long-lived
// channels with name resolution, load balancing, retries and channelz,
// and setting that up costs it about 0.4 ms of CPU per connection (a
// fifth of it formatting channelz trace strings). Envoy's own gRPC client
// is a thin layer on its HTTP/2 codec. This is the same kind of thing, on
// golang.org/x/net/http2's framer: the client preface and settings, one
// stream's HEADERS, length-prefixed messages in DATA frames both ways,
// flow control both ways, and the trailers' grpc-status: gRPC over HTTP/2
// as the specification has it, which a server serves like any other
// client.
//
// A Conn implements grpc.ClientConnInterface, so the generated ADS client
// runs on it unchanged; the codec comes from the call's
// grpc.ForceCodecV2 option. A received message arrives as one contiguous
// buffer, which the codec reads in place.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/url"
	"strconv"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	// receiveWindow is how much the server may send on the connection
	// and on the stream before this side reads it: 64 MiB, like the load
	// generator's gRPC-Go clients (Envoy's default is 256 MiB). A
	// window is topped up once a quarter of it has been read.
	receiveWindow = 64 << 20
	// http2DefaultWindow is the window each side starts with before
	// SETTINGS and WINDOW_UPDATE frames change it (RFC 9113, 6.9.2).
	http2DefaultWindow = 65535
	// maxMessage bounds one received message: a full state-of-the-world
	// response of the large mesh is 5.3 MiB.
	maxMessage = 1 << 30
	// streamID is the one stream's ID: the first a client opens.
	streamID = 1
)

// Conn is one HTTP/2 connection to a gRPC server, for one streaming call.
type Conn struct {
	nc        net.Conn
	authority string

	wmu sync.Mutex // held while writing frames
	bw  *bufio.Writer
	fr  *http2.Framer
	hb  bytes.Buffer // HPACK block being encoded (under wmu)
	he  *hpack.Encoder

	mu        sync.Mutex
	changed   *sync.Cond // send windows grew, or the connection or stream ended
	connSend  int64      // what this side may still send on the connection
	initSend  int64      // the server's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame  int        // the server's SETTINGS_MAX_FRAME_SIZE
	stream    *clientStream
	connErr   error // why the connection ended, once it has
	connRead  int   // DATA bytes received since the connection window was last topped up
	closeOnce sync.Once
}

// Dial connects to addr (host:port, plaintext) and starts reading.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, authority: addr, connSend: http2DefaultWindow, initSend: http2DefaultWindow, maxFrame: 16384}
	c.changed = sync.NewCond(&c.mu)
	c.bw = bufio.NewWriterSize(nc, 32<<10)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 32<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 16 << 10
	c.he = hpack.NewEncoder(&c.hb)

	// The client's half of the connection preface: the magic string, its
	// SETTINGS, and the connection window raised from its 64 KiB start.
	c.wmu.Lock()
	_, err = io.WriteString(c.bw, http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: receiveWindow},
			http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, receiveWindow-http2DefaultWindow)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		nc.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

// Close closes the connection; an open stream ends with Unavailable.
func (c *Conn) Close() error {
	c.fail(errors.New("connection closed"))
	return nil
}

// fail ends the connection and its stream with err (the first error wins).
func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.nc.Close()
		c.mu.Lock()
		c.connErr = err
		if s := c.stream; s != nil {
			s.endLocked(status.Error(codes.Unavailable, err.Error()))
		}
		c.changed.Broadcast()
		c.mu.Unlock()
	})
}

// Invoke is not supported: an ADS connection carries one streaming call.
func (c *Conn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return status.Error(codes.Unimplemented, "envoysim.Conn carries streaming calls only")
}

// NewStream opens the connection's stream: HEADERS naming method, and a
// goroutine that ends the stream when ctx does. The codec must be given
// with grpc.ForceCodecV2.
func (c *Conn) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	var codec encoding.CodecV2
	for _, o := range opts {
		if f, ok := o.(grpc.ForceCodecV2CallOption); ok {
			codec = f.CodecV2
		}
	}
	if codec == nil {
		return nil, status.Error(codes.Internal, "envoysim.Conn needs the codec as a grpc.ForceCodecV2 call option")
	}
	s := &clientStream{c: c, ctx: ctx, codec: codec, headers: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	switch {
	case c.connErr != nil:
		c.mu.Unlock()
		return nil, status.Error(codes.Unavailable, c.connErr.Error())
	case c.stream != nil:
		c.mu.Unlock()
		return nil, status.Error(codes.Internal, "envoysim.Conn carries one stream")
	}
	s.send = c.initSend
	c.stream = s
	c.mu.Unlock()

	c.wmu.Lock()
	c.hb.Reset()
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", c.authority},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"user-agent", "envoysim"},
	} {
		_ = c.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}) // writes to a bytes.Buffer
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: streamID, BlockFragment: c.hb.Bytes(), EndHeaders: true})
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	go func() {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			s.endLocked(status.FromContextError(ctx.Err()).Err())
			c.mu.Unlock()
			c.fail(ctx.Err())
		case <-s.done:
		}
	}()
	return s, nil
}

// read reads frames until the connection fails.
func (c *Conn) read() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.fail(err)
			return
		}
		if err := c.handle(f); err != nil {
			c.fail(err)
			return
		}
	}
}

// handle acts on one frame from the server.
func (c *Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		err := f.ForeachSetting(func(st http2.Setting) error {
			switch st.ID {
			case http2.SettingInitialWindowSize:
				// Applies to the open stream's window as a difference.
				c.mu.Lock()
				delta := int64(st.Val) - c.initSend
				c.initSend = int64(st.Val)
				if c.stream != nil {
					c.stream.send += delta
				}
				c.changed.Broadcast()
				c.mu.Unlock()
			case http2.SettingMaxFrameSize:
				c.mu.Lock()
				c.maxFrame = int(st.Val)
				c.mu.Unlock()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return c.write(func() error { return c.fr.WriteSettingsAck() })
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		data := f.Data
		return c.write(func() error { return c.fr.WritePing(true, data) })
	case *http2.WindowUpdateFrame:
		c.mu.Lock()
		if f.StreamID == 0 {
			c.connSend += int64(f.Increment)
		} else if s := c.stream; s != nil && f.StreamID == streamID {
			s.send += int64(f.Increment)
		}
		c.changed.Broadcast()
		c.mu.Unlock()
		return nil
	case *http2.MetaHeadersFrame:
		if f.StreamID != streamID {
			return fmt.Errorf("HEADERS on stream %d, which this client never opened", f.StreamID)
		}
		return c.headers(f)
	case *http2.DataFrame:
		return c.data(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		if s := c.stream; s != nil && f.StreamID == streamID {
			s.endLocked(status.Errorf(codes.Unavailable, "stream reset by the server: %v", f.ErrCode))
		}
		c.mu.Unlock()
		return nil
	case *http2.GoAwayFrame:
		return fmt.Errorf("the server sent GOAWAY (%v, %q)", f.ErrCode, f.DebugData())
	}
	return nil // PRIORITY, unknown frame types: ignored, as RFC 9113 asks
}

// headers reads the response headers, or the trailers that end the call.
func (c *Conn) headers(f *http2.MetaHeadersFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stream
	if s == nil || s.ended {
		return nil
	}
	md := metadata.MD{}
	for _, hf := range f.RegularFields() {
		md.Append(hf.Name, hf.Value)
	}
	if !s.gotHeaders {
		s.gotHeaders = true
		s.header = md
		close(s.headers)
		if st := f.PseudoValue("status"); st != "200" {
			s.endLocked(status.Errorf(codes.Unavailable, "the server answered HTTP status %s", st))
			return nil
		}
		if !f.StreamEnded() {
			return nil
		}
		// A "trailers-only" response: the status is in these headers.
	}
	if !f.StreamEnded() {
		return errors.New("a second HEADERS frame that does not end the stream")
	}
	s.trailer = md
	code, err := strconv.Atoi(firstOr(md.Get("grpc-status"), ""))
	switch {
	case err != nil:
		s.endLocked(status.Errorf(codes.Unknown, "trailers without a valid grpc-status (%q)", firstOr(md.Get("grpc-status"), "")))
	case codes.Code(code) == codes.OK:
		s.endLocked(io.EOF)
	default:
		msg, _ := url.PathUnescape(firstOr(md.Get("grpc-message"), ""))
		s.endLocked(status.Error(codes.Code(code), msg))
	}
	return nil
}

// data adds a DATA frame's bytes to the message being received, and tops
// up the connection's window once a quarter of it has been received.
func (c *Conn) data(f *http2.DataFrame) error {
	n := int(f.Length) // padding included: flow control counts it
	c.mu.Lock()
	c.connRead += n
	if s := c.stream; s != nil && f.StreamID == streamID && !s.ended {
		s.unread += n
		if err := s.receive(f.Data()); err != nil {
			s.endLocked(status.Error(codes.Internal, err.Error()))
		} else if f.StreamEnded() {
			s.endLocked(status.Error(codes.Internal, "the stream ended without trailers"))
		}
	}
	var inc uint32
	if c.connRead >= receiveWindow/4 {
		inc, c.connRead = uint32(c.connRead), 0
	}
	c.mu.Unlock()
	if inc == 0 {
		return nil
	}
	return c.write(func() error { return c.fr.WriteWindowUpdate(0, inc) })
}

// write writes frames under the write lock, and flushes.
func (c *Conn) write(frames func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := frames(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// flush sends what is written so far.
func (c *Conn) flush() error { return c.write(func() error { return nil }) }

// clientStream is the call: SendMsg writes messages, RecvMsg returns the
// ones the read goroutine assembled.
type clientStream struct {
	c     *Conn
	ctx   context.Context
	codec encoding.CodecV2

	// Under c.mu:
	send       int64        // what this side may still send on the stream
	frame      []byte       // a DATA frame's payload being gathered (SendMsg only)
	prefix     [5]byte      // the gRPC message prefix being read
	nPrefix    int          // bytes of it read
	msg        *[]byte      // the message being read (from msgPool), once its length is known
	nMsg       int          // bytes of it read
	queue      []mem.Buffer // messages received, not yet read by RecvMsg
	unread     int          // bytes received on the stream since its window was last topped up
	gotHeaders bool
	headers    chan struct{} // closed when the response headers (or the end) arrive
	header     metadata.MD
	trailer    metadata.MD
	ended      bool
	endErr     error         // io.EOF, or the call's status
	done       chan struct{} // closed when ended
}

// endLocked ends the stream with err, once (c.mu held).
func (s *clientStream) endLocked(err error) {
	if s.ended {
		return
	}
	s.ended, s.endErr = true, err
	if !s.gotHeaders {
		s.gotHeaders = true
		close(s.headers)
	}
	close(s.done)
	s.c.changed.Broadcast()
}

// receive adds b (a DATA frame's payload, valid only until the next frame
// is read) to the messages being assembled (c.mu held).
func (s *clientStream) receive(b []byte) error {
	for len(b) > 0 {
		if s.msg == nil {
			k := copy(s.prefix[s.nPrefix:], b)
			s.nPrefix += k
			b = b[k:]
			if s.nPrefix < len(s.prefix) {
				return nil
			}
			if s.prefix[0] != 0 {
				return errors.New("a compressed message, which this client did not ask for")
			}
			size := binary.BigEndian.Uint32(s.prefix[1:])
			if size > maxMessage {
				return fmt.Errorf("a message of %d bytes, more than the %d this client accepts", size, maxMessage)
			}
			s.msg, s.nMsg = msgPool.Get(int(size)), 0
		}
		k := copy((*s.msg)[s.nMsg:], b)
		s.nMsg += k
		b = b[k:]
		if s.nMsg == len(*s.msg) {
			s.queue = append(s.queue, mem.NewBuffer(s.msg, msgPool))
			s.msg, s.nPrefix = nil, 0
			s.c.changed.Broadcast()
		}
	}
	return nil
}

func (s *clientStream) Context() context.Context { return s.ctx }

// Header waits for the response headers.
func (s *clientStream) Header() (metadata.MD, error) {
	select {
	case <-s.headers:
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.header, nil
}

// Trailer returns the trailers, once the stream has ended.
func (s *clientStream) Trailer() metadata.MD {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.trailer
}

// CloseSend ends this side of the stream.
func (s *clientStream) CloseSend() error {
	return s.c.write(func() error { return s.c.fr.WriteData(streamID, true, nil) })
}

// SendMsg encodes m and writes it in DATA frames, waiting for the
// server's windows where they are used up. The encoded buffers are
// copied straight into frames, not joined first.
func (s *clientStream) SendMsg(m any) error {
	data, err := s.codec.Marshal(m)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer data.Free()
	var prefix [5]byte // uncompressed, and the length
	binary.BigEndian.PutUint32(prefix[1:], uint32(data.Len()))
	segments := make([][]byte, 0, 1+len(data))
	segments = append(segments, prefix[:])
	for _, b := range data {
		segments = append(segments, b.ReadOnlyData())
	}
	left := len(prefix) + data.Len()
	c := s.c
	for left > 0 {
		c.mu.Lock()
		if s.waitsForWindow() {
			// What is written so far must reach the server before it can
			// grant more window.
			c.mu.Unlock()
			if err := c.flush(); err != nil {
				c.fail(err)
				return status.Error(codes.Unavailable, err.Error())
			}
			c.mu.Lock()
			for s.waitsForWindow() {
				c.changed.Wait()
			}
		}
		if s.ended || c.connErr != nil {
			err := s.endErr
			if err == nil || err == io.EOF {
				err = status.Error(codes.Unavailable, "the stream ended")
			}
			c.mu.Unlock()
			return err
		}
		n := int(min(int64(left), c.connSend, s.send, int64(c.maxFrame)))
		c.connSend -= int64(n)
		s.send -= int64(n)
		c.mu.Unlock()

		// One frame of n bytes, gathered from the segments.
		frame := s.frame[:0]
		for len(frame) < n {
			k := min(n-len(frame), len(segments[0]))
			frame = append(frame, segments[0][:k]...)
			if segments[0] = segments[0][k:]; len(segments[0]) == 0 {
				segments = segments[1:]
			}
		}
		s.frame = frame
		left -= n
		c.wmu.Lock()
		err := c.fr.WriteData(streamID, false, frame)
		if err == nil && left == 0 {
			err = c.bw.Flush()
		}
		c.wmu.Unlock()
		if err != nil {
			c.fail(err)
			return status.Error(codes.Unavailable, err.Error())
		}
	}
	return nil
}

// waitsForWindow says whether a send must wait for the server to grant
// window (c.mu held).
func (s *clientStream) waitsForWindow() bool {
	c := s.c
	return !s.ended && c.connErr == nil && (c.connSend <= 0 || s.send <= 0)
}

// RecvMsg waits for the next message and decodes it into m; at the end of
// the call it returns io.EOF or the call's status.
func (s *clientStream) RecvMsg(m any) error {
	c := s.c
	c.mu.Lock()
	for len(s.queue) == 0 && !s.ended {
		c.changed.Wait()
	}
	if len(s.queue) == 0 {
		err := s.endErr
		c.mu.Unlock()
		return err
	}
	b := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	defer b.Free() // back to msgPool: a codec keeps nothing of what it reads
	var inc uint32
	if s.unread >= receiveWindow/4 {
		inc, s.unread = uint32(s.unread), 0
	}
	c.mu.Unlock()
	if inc > 0 {
		// The stream's window is topped up as messages are read, so that
		// a server cannot queue more than the window here.
		if err := c.write(func() error { return c.fr.WriteWindowUpdate(streamID, inc) }); err != nil {
			c.fail(err)
		}
	}
	if err := s.codec.Unmarshal(mem.BufferSlice{b}, m); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

// firstOr is vs[0], or def when vs is empty.
func firstOr(vs []string, def string) string {
	if len(vs) == 0 {
		return def
	}
	return vs[0]
}

// msgPool lends the buffers received messages are assembled in: the full
// responses of 2000 simulated Envoys are gigabytes, which would otherwise
// be allocated afresh. Unlike gRPC-Go's default pool it does not clear a
// buffer it lends: the message is copied over all of it before anyone
// reads it.
var msgPool = &dirtyPool{}

// dirtyPool keeps buffers in power-of-two size classes, from 4 KiB (below
// that, mem.NewBuffer does not pool) up to maxMessage.
type dirtyPool struct {
	classes [31]sync.Pool // class k holds buffers of capacity 1<<k
}

// sizeClass is the smallest k with 1<<k >= n, and at least 12.
func sizeClass(n int) int {
	if n <= 1<<12 {
		return 12
	}
	return bits.Len(uint(n - 1))
}

// Get returns a buffer of length size.
func (p *dirtyPool) Get(size int) *[]byte {
	k := sizeClass(size)
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		*b = (*b)[:size]
		return b
	}
	b := make([]byte, size, 1<<k)
	return &b
}

// Put takes back a buffer Get returned.
func (p *dirtyPool) Put(b *[]byte) {
	k := sizeClass(cap(*b))
	if cap(*b) != 1<<k {
		return // not one of ours
	}
	p.classes[k].Put(b)
}
