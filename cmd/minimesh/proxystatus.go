package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minimesh/minimesh/runner"
)

// statusColumns are proxy-status's columns: the xDS types by their usual
// abbreviations, in Envoy's subscription order.
var statusColumns = []struct{ title, typeName string }{
	{"CDS", "Cluster"},
	{"EDS", "ClusterLoadAssignment"},
	{"LDS", "Listener"},
	{"RDS", "RouteConfiguration"},
	{"SDS", "Secret"},
}

// runProxyStatus implements `minimesh proxy-status [NAME.NS]`: the sync
// table of every connected proxy (or one proxy's details), read from a
// running `minimesh serve`'s /debug/syncz.
func runProxyStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("proxy-status", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("debug-address", "127.0.0.1:15015", "the --debug-address of minimesh serve")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the server")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: minimesh proxy-status [NAME.NS] [--debug-address 127.0.0.1:15015]

Prints, for each connected proxy and xDS type, whether it holds what minimesh sent:
  SYNCED    it ACKed the last version sent (shown in brackets)
  STALE     a version was sent (in brackets) and is not ACKed yet
  NACKED    it rejected the last version sent (in brackets); the error follows the table
  NOT SENT  nothing of this type was sent (gRPC clients get no SDS)
With NAME.NS, prints that proxy's versions and nonces.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var name string
	if fs.NArg() > 0 { // a name, possibly followed by flags
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("proxy-status: want at most one proxy name, got %q and %q", name, fs.Arg(0))
		}
	}
	proxies, err := fetchSyncz(ctx, *addr, *timeout)
	if err != nil {
		return fmt.Errorf("proxy-status: %w", err)
	}
	if name == "" {
		printStatusTable(stdout, proxies)
		return nil
	}
	for _, p := range proxies {
		if p.Proxy == name {
			printProxyDetails(stdout, p)
			return nil
		}
	}
	return fmt.Errorf("proxy-status: no proxy %q is connected (%d are)", name, len(proxies))
}

// fetchSyncz reads /debug/syncz from a minimesh serve.
func fetchSyncz(ctx context.Context, addr string, timeout time.Duration) ([]runner.ProxySync, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + "/debug/syncz"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach minimesh's debug endpoints (is `minimesh serve` running with --debug-address %s?): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	var proxies []runner.ProxySync
	if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
		return nil, fmt.Errorf("GET %s: not a sync table: %w", url, err)
	}
	return proxies, nil
}

// printStatusTable prints one line per proxy, then every proxy's last NACK.
func printStatusTable(w io.Writer, proxies []runner.ProxySync) {
	if len(proxies) == 0 {
		fmt.Fprintln(w, "no proxies connected")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := []string{"NAME", "FLAVOR"}
	for _, c := range statusColumns {
		header = append(header, c.title)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	var nacks []string
	for _, p := range proxies {
		row := []string{p.Proxy, p.Flavor}
		for _, c := range statusColumns {
			ts, ok := p.Types[c.typeName]
			if !ok {
				ts = runner.TypeSync{Status: runner.SyncNotSent}
			}
			row = append(row, statusCell(ts))
			if n := ts.LastNACK; n != nil {
				nacks = append(nacks, fmt.Sprintf("%s %s rejected version %s at %s: %s",
					p.Proxy, c.title, shortVersion(n.Version), n.Time.Local().Format(time.TimeOnly), n.Message))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	if len(nacks) > 0 {
		fmt.Fprintln(w)
		for _, n := range nacks {
			fmt.Fprintln(w, n)
		}
	}
}

// statusCell is "SYNCED (1a2b3c4d)": the status and the version it is about.
func statusCell(ts runner.TypeSync) string {
	var v string
	switch ts.Status {
	case runner.SyncSynced:
		v = ts.AckedVersion
	case runner.SyncStale:
		v = ts.SentVersion
	case runner.SyncNACKed:
		if ts.LastNACK != nil {
			v = ts.LastNACK.Version
		}
	}
	if v == "" {
		return ts.Status
	}
	return fmt.Sprintf("%s (%s)", ts.Status, shortVersion(v))
}

// shortVersion is a version's prefix: enough to compare by eye.
func shortVersion(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	if v == "" {
		return "-"
	}
	return v
}

// printProxyDetails prints every version and nonce of one proxy.
func printProxyDetails(w io.Writer, p runner.ProxySync) {
	fmt.Fprintf(w, "Proxy:    %s\nFlavor:   %s (user agent %q)\nStreams:  %d\n\n", p.Proxy, p.Flavor, p.UserAgent, p.Streams)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSTATUS\tSENT\tNONCE\tACKED\tPUBLISHED\tUPDATED")
	var nacks []string
	for _, c := range statusColumns {
		ts, ok := p.Types[c.typeName]
		if !ok {
			ts = runner.TypeSync{Status: runner.SyncNotSent}
		}
		updated := "-"
		if ts.Updated != nil {
			updated = ts.Updated.Local().Format(time.TimeOnly)
		}
		nonce := ts.SentNonce
		if nonce == "" {
			nonce = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.title, ts.Status, shortVersion(ts.SentVersion), nonce,
			shortVersion(ts.AckedVersion), shortVersion(ts.PublishedVersion), updated)
		if n := ts.LastNACK; n != nil {
			nacks = append(nacks, fmt.Sprintf("%s: rejected version %s (nonce %s) at %s:\n  %s",
				c.title, n.Version, n.Nonce, n.Time.Local().Format(time.RFC3339), n.Message))
		}
	}
	_ = tw.Flush()
	for _, n := range nacks {
		fmt.Fprintln(w, "\n"+n)
	}
}
