// Command echo is the application of the canary example. In server mode it
// answers every request with its name, version and host; in client mode it
// calls a URL forever and reports which version answered, so a 90/10 split
// can be watched as it happens.
//
//	echo -listen 127.0.0.1:8080 -version v1
//	echo -client -url http://my-app/ -interval 500ms
//
// The client honors HTTP_PROXY, which is how its requests reach the Envoy
// sidecar in the docker-compose example. It uses the standard library only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// servedByHeader names the version that answered a request.
const servedByHeader = "x-served-by"

// reportEvery is how many requests the client makes between two summaries.
const reportEvery = 20

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "server: address to listen on")
	name := flag.String("name", "my-app", "server: application name to answer with")
	version := flag.String("version", "v1", "server: version to answer with")
	client := flag.Bool("client", false, "run as a client instead of a server")
	url := flag.String("url", "http://my-app/", "client: URL to call")
	interval := flag.Duration("interval", 500*time.Millisecond, "client: time between requests")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *client {
		err = runClient(ctx, *url, *interval, os.Stdout)
	} else {
		err = runServer(ctx, *listen, echoHandler(*name, *version, hostname()))
	}
	if err != nil {
		log.Fatal(err)
	}
}

// echoHandler answers every request with one line naming the application,
// its version and the host it runs on, and the version in x-served-by.
func echoHandler(name, version, host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set(servedByHeader, version)
		fmt.Fprintf(w, "hello from %s %s (host %s)\n", name, version, host)
	})
}

// runServer serves h on addr until ctx is done.
func runServer(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("echo: listening on %s", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runClient calls url every interval until ctx is done, printing who
// answered each request and, every reportEvery requests, the share of each.
func runClient(ctx context.Context, url string, interval time.Duration, out io.Writer) error {
	// http.DefaultTransport takes its proxy from HTTP_PROXY and NO_PROXY.
	client := &http.Client{Timeout: 5 * time.Second}
	var t tally
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		answer := call(ctx, client, url)
		if ctx.Err() != nil {
			return nil // stopped mid-request: nothing to report
		}
		t.add(answer.version)
		fmt.Fprintf(out, "%-8s %s\n", answer.version, answer.text)
		if t.total%reportEvery == 0 {
			fmt.Fprintln(out, t)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// answer is what the client learned from one request.
type answer struct {
	version string // the x-served-by header, or "error"
	text    string // the response body, or the error
}

// call makes one request and reports who answered it.
func call(ctx context.Context, client *http.Client, url string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{"error", err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{"error", err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return answer{"error", err.Error()}
	}
	version := resp.Header.Get(servedByHeader)
	if version == "" {
		version = "unknown"
	}
	return answer{version, fmt.Sprintf("%s %s", resp.Status, trimNewline(string(body)))}
}

// hostname is the container's host name, or "unknown".
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// trimNewline drops one trailing newline.
func trimNewline(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\n' {
		return s[:len(s)-1]
	}
	return s
}
