// rate.js — k6 script for scripts/bench.sh: POST /orders at a fixed rate (BENCH_RATE orders/s
// for BENCH_SECONDS, each virtual user on its own keep-alive connection), a different order
// each time, and one machine-readable line at the end, as bench/orders.lua prints for wrk
// (dropped: the orders k6 did not send because all 256 virtual users were waiting).
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const non202 = new Counter('non202');

export const options = {
  scenarios: {
    orders: {
      executor: 'constant-arrival-rate',
      rate: parseInt(__ENV.BENCH_RATE, 10),
      timeUnit: '1s',
      duration: `${__ENV.BENCH_SECONDS}s`,
      preAllocatedVUs: 256, // all started up front: none is missing when a response is slow
      maxVUs: 256,
    },
  },
  summaryTrendStats: ['med', 'p(99)'],
};

export default function () {
  const r = http.post(`${__ENV.URL}/orders`,
    JSON.stringify({ customer: `bench-${__VU}-${__ITER}`, pastry: `pastry ${__ITER % 1000}` }),
    { headers: { 'Content-Type': 'application/json' } });
  if (r.status !== 202) non202.add(1);
}

export function handleSummary(data) {
  const m = data.metrics;
  const us = (v) => Math.round(v * 1000);
  const count = (name) => (m[name] ? m[name].values.count : 0);
  return {
    stdout: `BENCH requests=${count('http_reqs')} non202=${count('non202')} ` +
      `dropped=${count('dropped_iterations')} ` +
      `p50_us=${us(m.http_req_duration.values.med)} ` +
      `p99_us=${us(m.http_req_duration.values['p(99)'])}\n`,
  };
}
