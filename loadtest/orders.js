// k6 load test for Bakery's order flow: post an order, poll it until it is finished, measure.
//
//   k6 run -e LOADTEST_PROFILE=smoke -e BASE_URL=http://127.0.0.1:8000 loadtest/orders.js
//
// LOADTEST_PROFILE: smoke (2 VUs, 30 s) or full (the original's 15 VUs for 15 minutes).
// BASE_URL: where reception answers (default http://127.0.0.1:8000).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const PROFILES = {
  smoke: { vus: 2, duration: '30s' },
  full: { vus: 15, duration: '15m' },
};
const PROFILE = __ENV.LOADTEST_PROFILE || 'smoke';
if (!PROFILES[PROFILE]) {
  throw new Error(`LOADTEST_PROFILE must be one of ${Object.keys(PROFILES)}, not "${PROFILE}"`);
}
const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
// How long one order may take from POST to "finished" before it counts as lost.
const ORDER_DEADLINE_MS = 30000;
const POLL_INTERVAL_S = 0.1;

const PASTRIES = ['croissant', 'pain au chocolat', 'la bombe', 'eclair', 'macaron', 'brioche'];
const ORDER_KEY = /^[0-9a-f]{32}$/;

// Client-side time from sending the POST to first seeing status "finished".
const orderCompletion = new Trend('order_completion_time', true);
// Share of orders that did not finish (rejected, failed, or past the deadline).
const ordersFailed = new Rate('orders_failed');
const ordersFinished = new Counter('orders_finished');

export const options = {
  ...PROFILES[PROFILE],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:POST /orders}': ['p(95)<500'],
    'http_req_duration{name:GET /orders/{key}}': ['p(95)<200'],
    order_completion_time: ['p(95)<3000'],
    orders_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'max'],
};

// Fails the run at once, with a clear message, when nothing answers at BASE_URL.
export function setup() {
  const res = http.get(`${BASE_URL}/`, { tags: { name: 'GET /' } });
  if (res.status !== 200) {
    throw new Error(`reception at ${BASE_URL} answered ${res.status} ${res.error || ''}`);
  }
}

export default function () {
  const started = Date.now();
  const order = {
    customer: `k6-vu${__VU}`,
    pastry: PASTRIES[Math.floor(Math.random() * PASTRIES.length)],
  };
  const posted = http.post(`${BASE_URL}/orders`, JSON.stringify(order), {
    headers: { 'Content-Type': 'application/json' },
    tags: { name: 'POST /orders' },
  });
  const key = posted.status === 202 ? posted.json('orderKey') : undefined;
  const accepted = check(posted, {
    'order accepted (202)': (r) => r.status === 202,
    'orderKey is 32 hex': () => typeof key === 'string' && ORDER_KEY.test(key),
  });
  if (!accepted) {
    ordersFailed.add(true);
    return;
  }

  let status;
  while (Date.now() - started < ORDER_DEADLINE_MS) {
    const res = http.get(`${BASE_URL}/orders/${key}`, { tags: { name: 'GET /orders/{key}' } });
    check(res, { 'order readable (200)': (r) => r.status === 200 });
    status = res.status === 200 ? res.json('status') : undefined;
    if (status === 'finished' || status === 'failed') break;
    sleep(POLL_INTERVAL_S);
  }
  const finished = status === 'finished';
  check(status, { 'order finished': () => finished });
  ordersFailed.add(!finished);
  if (finished) {
    orderCompletion.add(Date.now() - started);
    ordersFinished.add(1);
  }
}
