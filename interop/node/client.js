#!/usr/bin/env node
// Proxyless gRPC interop client for minimesh, built on @grpc/grpc-js-xds.
//
// It resolves an xds:/// target through the xDS server named in the bootstrap file
// (GRPC_XDS_BOOTSTRAP), sends empty grpc.testing.TestService/UnaryCall requests and counts
// which backend version answered (response header "x-served-by", or server_id in the response).
//
// Usage:
//   GRPC_XDS_BOOTSTRAP=/path/bootstrap.json node client.js --target xds:///my-app --count 4000
//   GRPC_XDS_BOOTSTRAP=/path/bootstrap.json node client.js --target xds:///my-app --seconds 20
//
// Output (stdout, one JSON object per line):
//   every second:  {"t":3,"v1":180,"v2":20,"errors":0}          (counts for that second)
//   at the end:    {"total":true,"v1":..,"v2":..,"errors":..,"first_error":"..","error_kinds":{..}}
// Exit status: 0 if at least one RPC succeeded, 1 if none did, 2 on bad usage.
'use strict';

const grpc = require('@grpc/grpc-js');
const xds = require('@grpc/grpc-js-xds');

const METHOD = '/grpc.testing.TestService/UnaryCall';
const ERROR_BACKOFF_MS = 50;

function usage(msg) {
  if (msg) process.stderr.write(`client.js: ${msg}\n`);
  process.stderr.write(
    'usage: node client.js [--target xds:///my-app] (--count N | --seconds S)\n' +
      '                      [--concurrency C] [--rate R] [--rpc-timeout-ms MS] [--timeout S] [--verbose]\n' +
      '  --count N         send N RPCs, then stop\n' +
      '  --seconds S       send RPCs for S seconds, then stop\n' +
      '  --concurrency C   RPCs in flight at once (default 4)\n' +
      '  --rate R          start at most R RPCs per second (default: as fast as they complete)\n' +
      '  --rpc-timeout-ms  deadline of each RPC (default 5000)\n' +
      '  --timeout S       hard limit on the whole run in --count mode (default 100)\n' +
      'The xDS bootstrap is read from the file named by GRPC_XDS_BOOTSTRAP.\n'
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    target: 'xds:///my-app',
    count: 0,
    seconds: 0,
    concurrency: 4,
    rate: 0,
    rpcTimeoutMs: 5000,
    timeout: 100,
    verbose: false,
  };
  const num = (name, v) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) usage(`${name} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => (val !== undefined ? val : argv[++i]);
    switch (a) {
      case '--target': opts.target = next(); if (!opts.target) usage('--target needs a value'); break;
      case '--count': opts.count = Math.floor(num(a, next())); break;
      case '--seconds': opts.seconds = num(a, next()); break;
      case '--concurrency': opts.concurrency = Math.floor(num(a, next())); break;
      case '--rate': opts.rate = num(a, next()); break;
      case '--rpc-timeout-ms': opts.rpcTimeoutMs = num(a, next()); break;
      case '--timeout': opts.timeout = num(a, next()); break;
      case '--verbose': case '-v': opts.verbose = true; break;
      case '--help': case '-h': usage(); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if ((opts.count > 0) === (opts.seconds > 0)) usage('give exactly one of --count and --seconds');
  return opts;
}

// serverIdOf extracts field 4 (server_id, a string) from a serialized grpc.testing.SimpleResponse,
// skipping every other field. Returns '' if absent or malformed.
function serverIdOf(buf) {
  let i = 0;
  const varint = () => {
    let result = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error('varint too long');
  };
  try {
    while (i < buf.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const len = varint();
        if (field === 4) return buf.subarray(i, i + len).toString('utf8');
        i += len;
      } else return '';
    }
  } catch (e) {
    return '';
  }
  return '';
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!process.env.GRPC_XDS_BOOTSTRAP && !process.env.GRPC_XDS_BOOTSTRAP_CONFIG) {
    process.stderr.write('client.js: warning: GRPC_XDS_BOOTSTRAP is not set; xds:/// targets will fail\n');
  }
  // grpc-js-xds reports a bootstrap it rejects only through a misleading resolution error
  // ("Cannot read properties of null ..."), so load it once here and say what is wrong.
  let bootstrapError = '';
  try {
    require('@grpc/grpc-js-xds/build/src/xds-bootstrap').loadBootstrapInfo();
  } catch (e) {
    bootstrapError = `xDS bootstrap rejected by @grpc/grpc-js-xds: ${e.message}`;
    process.stderr.write(`client.js: ${bootstrapError}\n`);
  }
  xds.register();

  const client = new grpc.Client(opts.target, grpc.credentials.createInsecure());

  const total = { v1: 0, v2: 0, errors: 0 };
  let bucket = { v1: 0, v2: 0, errors: 0 };
  let firstError = bootstrapError;
  const errorKinds = {};
  const start = Date.now();
  let tick = 0;
  let stopped = false;
  let issued = 0;

  const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  const flushSecond = () => {
    tick++;
    emit({ t: tick, v1: bucket.v1, v2: bucket.v2, errors: bucket.errors });
    bucket = { v1: 0, v2: 0, errors: 0 };
  };
  const ticker = setInterval(flushSecond, 1000);

  const recordError = (msg) => {
    total.errors++;
    bucket.errors++;
    if (!firstError) firstError = msg;
    // Bucket error kinds by message with numbers and addresses stripped, so that they stay few.
    const kind = msg.replace(/[0-9]+(\.[0-9]+)*/g, 'N').slice(0, 200);
    errorKinds[kind] = (errorKinds[kind] || 0) + 1;
    if (opts.verbose) process.stderr.write(`rpc error: ${msg}\n`);
  };
  const recordVersion = (v) => {
    if (v === 'v1' || v === 'v2') {
      total[v]++;
      bucket[v]++;
    } else {
      recordError(`unrecognised backend version ${JSON.stringify(v)} (no x-served-by header or server_id)`);
    }
  };

  const oneRPC = () =>
    new Promise((resolve) => {
      let servedBy = '';
      const call = client.makeUnaryRequest(
        METHOD,
        (b) => b,
        (b) => b,
        Buffer.alloc(0),
        new grpc.Metadata(),
        { deadline: Date.now() + opts.rpcTimeoutMs },
        (err, resp) => {
          if (err) {
            const code = grpc.status[err.code] || String(err.code);
            recordError(`${code}: ${err.details || err.message}`);
            // Back off a little so that a fast-failing channel does not spin (or burn --count).
            setTimeout(resolve, ERROR_BACKOFF_MS);
            return;
          }
          recordVersion(servedBy || serverIdOf(resp));
          resolve();
        }
      );
      call.on('metadata', (md) => {
        const vals = md.get('x-served-by');
        if (vals.length > 0) servedBy = String(vals[0]);
      });
    });

  let started = 0; // RPCs started, for --rate
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const worker = async () => {
    while (!stopped) {
      if (opts.count > 0) {
        if (issued >= opts.count) return;
        issued++;
      }
      if (opts.rate > 0) {
        const due = start + (started++ * 1000) / opts.rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        if (stopped) return;
      }
      await oneRPC();
    }
  };

  // Hard stop: --seconds ends the run; in --count mode, --timeout bounds it even if every RPC
  // stalls (e.g. the xDS server is unreachable).
  const limitMs = (opts.seconds > 0 ? opts.seconds : opts.timeout) * 1000;
  let finished = false;
  const finish = (why) => {
    if (finished) return;
    finished = true;
    stopped = true;
    clearInterval(ticker);
    // Report the partial last second only if it holds anything.
    if (bucket.v1 + bucket.v2 + bucket.errors > 0) flushSecond();
    if (why && opts.verbose) process.stderr.write(`client.js: ${why}\n`);
    emit({
      total: true,
      v1: total.v1,
      v2: total.v2,
      errors: total.errors,
      first_error: firstError,
      error_kinds: errorKinds,
      elapsed_ms: Date.now() - start,
      reason: why,
    });
    try {
      client.close();
    } catch (e) {
      // ignore
    }
    process.exit(total.v1 + total.v2 > 0 ? 0 : 1);
  };
  const limitTimer = setTimeout(() => finish(opts.seconds > 0 ? 'seconds elapsed' : 'timeout reached'), limitMs);
  // In --seconds mode the run stops at once when the time is up; RPCs still in flight are not
  // counted, so the run lasts exactly as long as asked.

  const workers = [];
  for (let k = 0; k < opts.concurrency; k++) workers.push(worker());
  Promise.all(workers).then(() => {
    clearTimeout(limitTimer);
    finish(opts.count > 0 ? 'count reached' : 'stopped');
  });
}

main();
