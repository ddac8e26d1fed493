'use strict';
// Corral's layer over aws-lambda-ric 4.x, preloaded with `node --require` (the runtime's
// worker threads inherit it). It changes nothing of the client's own behaviour; it adds:
//
// * In Managed Instances mode (AWS_LAMBDA_MAX_CONCURRENCY set), each worker thread
//   - fails only the request at fault when code throws outside the handler's promise (an
//     unhandled rejection or an uncaught exception): the error is logged under that request
//     and posted as its answer, and the worker goes on serving (aws-lambda-ric 4.x installs
//     no handler: Node would end the thread and every request it runs would hang until its
//     timeout);
//   - tells the main thread which requests it runs, so that if it exits anyway
//     (process.exit() in a handler), those requests fail at once with Runtime.ExitError and
//     the main thread starts a new worker in its place (the client never replaces one).
//   - lets a streamed response through while the worker's /next is parked (below);
// * The main thread ends on SIGTERM (as a container's pid 1 it would otherwise ignore it).
const wt = require('node:worker_threads');
const http = require('node:http');
const { AsyncLocalStorage } = require('node:async_hooks');

const multi = process.env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined;
const [apiHost, apiPort] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const REQUEST_ID = Symbol.for('_AWS_LAMBDA_REQUEST_ID');
const X_RAY_TRACE_ID = Symbol.for('_AWS_LAMBDA_X_RAY_TRACE_ID');
const TENANT_ID = Symbol.for('_AWS_LAMBDA_TENANT_ID');
const PROTECTED = [REQUEST_ID, X_RAY_TRACE_ID, TENANT_ID];

function postError(requestId, errorType, errorMessage, trace) {
  const body = JSON.stringify({ errorType, errorMessage, trace: trace || [] });
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: apiHost,
        port: Number(apiPort),
        method: 'POST',
        path: `/2018-06-01/runtime/invocation/${requestId}/error`,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'Lambda-Runtime-Function-Error-Type': errorType,
        },
      },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', resolve);
    req.end(body);
  });
}

if (multi && wt.isMainThread) {
  process.on('SIGTERM', () => process.exit(0));
  const Original = wt.Worker;
  class CorralWorker extends Original {
    constructor(file, options) {
      super(file, options);
      const running = new Set();
      let served = false;
      this.on('message', (m) => {
        if (m === null || typeof m !== 'object' || m.corral === undefined) return;
        if (m.corral === 'start') {
          running.add(m.id);
          served = true;
        } else {
          running.delete(m.id);
        }
      });
      this.on('exit', (code) => {
        for (const id of running) {
          postError(
            id,
            'Runtime.ExitError',
            `RequestId: ${id} Error: Runtime exited with error: exit status ${code}`,
          );
        }
        // A worker that never served (its init failed) is not replaced: the runtime
        // reports the init error and the execution environment fails.
        if (served) new CorralWorker(file, options);
      });
    }
  }
  wt.Worker = CorralWorker;
} else if (multi) {
  // The client's HTTP agent allows one socket per worker, and with node:http polling
  // (AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1, which Corral sets) the parked /next holds
  // it: a streamed response would wait for the next invocation. One more socket keeps
  // what the native poll gives: streams of one worker go one after another, as on Lambda.
  const OriginalAgent = http.Agent;
  http.Agent = class CorralAgent extends OriginalAgent {
    constructor(options) {
      const single = options && options.keepAlive && options.maxSockets === 1;
      super(single ? { ...options, maxSockets: 2 } : options);
    }
  };
  // The client keeps using a store already published on globalThis.awslambda: this one
  // behaves as its own (an AsyncLocalStorage per worker) and also tells the main thread
  // when each request starts and ends.
  class CorralInvokeStore {
    constructor() {
      this.als = new AsyncLocalStorage();
    }
    isProtectedKey(key) {
      return PROTECTED.includes(key);
    }
    getRequestId() {
      return this.get(REQUEST_ID) ?? '-';
    }
    getXRayTraceId() {
      return this.get(X_RAY_TRACE_ID);
    }
    getTenantId() {
      return this.get(TENANT_ID);
    }
    getContext() {
      return this.als.getStore();
    }
    hasContext() {
      return this.als.getStore() !== undefined;
    }
    get(key) {
      return this.als.getStore()?.[key];
    }
    set(key, value) {
      if (this.isProtectedKey(key)) {
        throw new Error(`Cannot modify protected Lambda context field: ${String(key)}`);
      }
      const store = this.als.getStore();
      if (!store) throw new Error('No context available');
      store[key] = value;
    }
    run(context, fn) {
      const id = context[REQUEST_ID];
      wt.parentPort.postMessage({ corral: 'start', id });
      const done = () => wt.parentPort.postMessage({ corral: 'end', id });
      let result;
      try {
        result = this.als.run(context, fn);
      } catch (err) {
        done();
        throw err;
      }
      if (result && typeof result.then === 'function') return result.finally(done);
      done();
      return result;
    }
  }
  const store = new CorralInvokeStore();
  globalThis.awslambda = { ...(globalThis.awslambda || {}), InvokeStore: store };

  const failOwnRequest = (errorType) => (error) => {
    const requestId = store.getRequestId();
    const err = error instanceof Error ? error : new Error(String(error));
    const message =
      errorType === 'Runtime.UnhandledPromiseRejection'
        ? `${err.name}: ${err.message}`
        : err.message;
    console.error(
      errorType === 'Runtime.UnhandledPromiseRejection'
        ? 'Unhandled Promise Rejection'
        : 'Uncaught Exception',
      err,
    );
    if (requestId === '-') {
      // Outside any invocation (the init failed, or background code threw): the thread
      // ends as Node ends it by default.
      process.exit(1);
    }
    const type = errorType === 'uncaught' ? err.name || 'Error' : errorType;
    postError(requestId, type, message, String(err.stack || '').split('\n'));
  };
  process.on('unhandledRejection', failOwnRequest('Runtime.UnhandledPromiseRejection'));
  process.on('uncaughtException', failOwnRequest('uncaught'));
} else {
  process.on('SIGTERM', () => process.exit(0));
}
