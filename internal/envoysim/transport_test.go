package envoysim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// rawCodec sends and receives messages as plain bytes (*[]byte).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "raw" }

const echoMethod = "/envoysim.test.Echo/Stream"

// echoServer is a gRPC-Go server with one streaming method: for each
// message it receives it sends back `copies` copies of it in one message;
// a message that reads "fail" ends the call with PermissionDenied.
func echoServer(t *testing.T, copies int) string {
	t.Helper()
	desc := grpc.ServiceDesc{
		ServiceName: "envoysim.test.Echo",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Stream", ServerStreams: true, ClientStreams: true,
			Handler: func(_ any, s grpc.ServerStream) error {
				for {
					var in []byte
					if err := s.RecvMsg(&in); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					if string(in) == "fail" {
						return status.Error(codes.PermissionDenied, "no entry for 50% of you")
					}
					out := bytes.Repeat(in, copies)
					if err := s.SendMsg(&out); err != nil {
						return err
					}
				}
			}}},
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
	gs.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func openEcho(t *testing.T, ctx context.Context, addr string) grpc.ClientStream {
	t.Helper()
	conn, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, echoMethod,
		grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConnFlowControl: a 1 MiB message goes out through the server's
// 64 KiB initial windows, and 3 x 48 MiB come back through this side's
// 64 MiB windows, which must be topped up on the way; every byte arrives
// in order.
func TestConnFlowControl(t *testing.T) {
	addr := echoServer(t, 48)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openEcho(t, ctx, addr)
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i % 251)
	}
	for round := range 3 {
		msg[0] = byte(round)
		if err := s.SendMsg(&msg); err != nil {
			t.Fatalf("round %d: send: %v", round, err)
		}
		var got []byte
		if err := s.RecvMsg(&got); err != nil {
			t.Fatalf("round %d: receive: %v", round, err)
		}
		if len(got) != 48*len(msg) || !bytes.Equal(got[47*len(msg):], msg) || !bytes.Equal(got[:len(msg)], msg) {
			t.Fatalf("round %d: got %d bytes, not 48 copies of the %d sent", round, len(got), len(msg))
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var more []byte
	if err := s.RecvMsg(&more); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want io.EOF (status OK in the trailers)", err)
	}
}

// TestConnStatus: the trailers' grpc-status and grpc-message (percent-
// encoded on the wire) end the call as a status error.
func TestConnStatus(t *testing.T) {
	addr := echoServer(t, 1)
	s := openEcho(t, context.Background(), addr)
	fail := []byte("fail")
	if err := s.SendMsg(&fail); err != nil {
		t.Fatal(err)
	}
	var got []byte
	err := s.RecvMsg(&got)
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "no entry for 50% of you" {
		t.Fatalf("got %v, want PermissionDenied with the server's message", err)
	}
}

// TestConnCancel: cancelling the call's context ends a waiting RecvMsg
// with Canceled, and the connection with it.
func TestConnCancel(t *testing.T) {
	addr := echoServer(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s := openEcho(t, ctx, addr)
	done := make(chan error, 1)
	go func() {
		var got []byte
		done <- s.RecvMsg(&got)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RecvMsg still waiting 5 s after the context was cancelled")
	}
	msg := []byte("x")
	if err := s.SendMsg(&msg); err == nil {
		t.Fatal("SendMsg after cancel succeeded")
	}
}

// TestConnOneStream: a Conn carries one call, and says so when asked for
// a second.
func TestConnOneStream(t *testing.T) {
	addr := echoServer(t, 1)
	conn, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
	if _, err := conn.NewStream(context.Background(), desc, echoMethod, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.NewStream(context.Background(), desc, echoMethod, grpc.ForceCodecV2(rawCodec{})); err == nil {
		t.Fatal("a second stream on one Conn was accepted")
	}
	if _, err := Dial(context.Background(), "127.0.0.1:1"); err == nil {
		t.Fatal("dialing a closed port succeeded")
	}
}

// TestDirtyPool: buffers come in the length asked for, with the capacity
// of the class above it.
func TestDirtyPool(t *testing.T) {
	var p dirtyPool
	for size, class := range map[int]int{0: 12, 1: 12, 4096: 12, 4097: 13, 5 << 20: 23} {
		b := p.Get(size)
		if len(*b) != size || cap(*b) != 1<<class {
			t.Fatalf("Get(%d): len %d cap %d, want cap %d", size, len(*b), cap(*b), 1<<class)
		}
		p.Put(b)
	}
}
