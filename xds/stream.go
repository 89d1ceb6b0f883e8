package xds

// What the state-of-the-world and delta streams share: how a stream's
// goroutines divide the work.
//
// The goroutine gRPC runs the handler on reads the proxy's requests and
// handles each in turn. The responses the cache prepares wait in the
// stream's outbox, and a sender goroutine writes them to the proxy; it is
// started when a response arrives in an empty outbox and ends when the
// outbox is empty again. An idle stream, which is what almost every stream
// is almost all the time, has one goroutine of its own instead of two: at
// 500 proxies the second one's stack was 2 MB of a server of 60.
//
// The stream's state (per type: nonces, versions, subscriptions) is
// guarded by one lock, held while a request is handled and while a
// response is prepared for sending (its nonce given, recorded as sent),
// never while one is written to the network. A proxy slow to read its
// responses therefore never keeps the server from reading its requests:
// simple clients write their next request before they read the response,
// and would otherwise wait for the server while it waited for them.

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamLoop runs one stream (run, deliver): Req is the request type, Resp
// what the cache prepares, Msg what goes on the wire.
type streamLoop[Req, Resp, Msg any] struct {
	// mu guards the stream's state: handle and prepare are called with it
	// held.
	mu sync.Mutex
	// recv reads the next request.
	recv func() (Req, error)
	// handle handles a request; an error ends the stream with it.
	handle func(Req) error
	// prepare turns a response into the message to send, and records it
	// as sent.
	prepare func(Resp) Msg
	// send writes a message to the proxy.
	send func(Msg) error
	// activity, if set, is told of every request read.
	activity func()

	out outbox[Resp]
}

// outbox holds the responses prepared for a stream and not yet sent, in
// the order the cache prepared them (clusters before endpoints, listeners
// before routes).
type outbox[Resp any] struct {
	// mu guards the fields below. The cache delivers responses with its
	// own locks held, so nothing is called with mu held.
	mu      sync.Mutex
	queue   []Resp
	sending bool  // a sender goroutine is running
	closed  bool  // the stream has ended: nothing more is sent
	failed  error // the send that failed, ending the stream
	done    sync.WaitGroup
}

// maxQueued bounds the responses waiting in an outbox. A state-of-the-world
// stream has at most one per type (a new request drops the one it
// replaces); a delta stream keeps them all, and a proxy that sends
// requests without reading the responses would have them pile up.
const maxQueued = 1000

// deliver queues a response, and starts a sender if none is running. The
// cache calls it (through a watch) with its locks held: it never blocks.
func (l *streamLoop[Req, Resp, Msg]) deliver(r Resp) {
	o := &l.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if len(o.queue) >= maxQueued {
		o.failed = status.Errorf(codes.ResourceExhausted,
			"more than %d responses wait to be sent: the proxy sends requests without reading the responses", maxQueued)
		o.closed, o.queue = true, nil
		return
	}
	o.queue = append(o.queue, r)
	if !o.sending {
		o.sending = true
		o.done.Add(1)
		go l.sendAll()
	}
}

// sendAll sends the queued responses, one at a time, until none is left.
func (l *streamLoop[Req, Resp, Msg]) sendAll() {
	o := &l.out
	defer o.done.Done()
	for {
		l.mu.Lock()
		r, ok := o.next()
		if !ok {
			l.mu.Unlock()
			return
		}
		msg := l.prepare(r)
		l.mu.Unlock()
		if err := l.send(msg); err != nil {
			o.mu.Lock()
			o.failed, o.closed, o.sending, o.queue = err, true, false, nil
			o.mu.Unlock()
			return
		}
	}
}

// next takes the first queued response; when there is none, the sender
// that asked ends.
func (o *outbox[Resp]) next() (r Resp, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || len(o.queue) == 0 {
		o.sending = false
		o.queue = nil // let the array go: most streams are idle
		return r, false
	}
	r = o.queue[0]
	clear(o.queue[:1])
	o.queue = o.queue[1:]
	return r, true
}

// drop removes the queued responses that match; the caller holds the
// stream's lock.
func (o *outbox[Resp]) drop(match func(Resp) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.queue[:0]
	for _, r := range o.queue {
		if !match(r) {
			kept = append(kept, r)
		}
	}
	clear(o.queue[len(kept):])
	o.queue = kept
}

// err is the error of a send that failed, if one did.
func (o *outbox[Resp]) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

// close stops sending, and waits for a send in progress.
func (o *outbox[Resp]) close() {
	o.mu.Lock()
	o.closed, o.queue = true, nil
	o.mu.Unlock()
	o.done.Wait()
}

// run reads and handles the proxy's requests until the proxy or the server
// ends the stream, or a request or a send fails.
func (l *streamLoop[Req, Resp, Msg]) run() error {
	defer l.out.close()
	for {
		req, err := l.recv()
		if err != nil {
			// A failed send cancels the stream, which is what ends recv:
			// wait for the sender to have recorded why.
			l.out.close()
			if sendErr := l.out.err(); sendErr != nil {
				return sendErr
			}
			return endOfStream(err)
		}
		if l.activity != nil {
			l.activity()
		}
		l.mu.Lock()
		err = l.handle(req)
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if err := l.out.err(); err != nil {
			return err
		}
	}
}

// endOfStream is what a stream returns when reading a request failed.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return nil // the proxy closed the stream
	}
	return err
}
