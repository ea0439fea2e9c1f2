-- orders.lua — wrk script for scripts/bench.sh: POST /orders with a different order each time
-- (customer and pastry vary per thread and request), counts responses other than 202, and
-- prints one machine-readable line at the end. BENCH_CLOSE=1 adds "Connection: close" to every
-- request (wrk then reconnects for each one).
local threads = {}

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

function init(args)
	n, non202 = 0, 0
	wrk.method = "POST"
	wrk.path = "/orders"
	wrk.headers["Content-Type"] = "application/json"
	if os.getenv("BENCH_CLOSE") == "1" then
		wrk.headers["Connection"] = "close"
	end
end

function request()
	n = n + 1
	return wrk.format(nil, nil, nil, string.format(
		'{"customer":"bench-%d-%d","pastry":"pastry %d"}', id, n, n % 1000))
end

function response(status, headers, body)
	if status ~= 202 then
		non202 = non202 + 1
	end
end

function done(summary, latency, requests)
	local bad = 0
	for _, t in ipairs(threads) do
		bad = bad + t:get("non202")
	end
	local e = summary.errors
	io.write(string.format("BENCH requests=%d duration_us=%d non202=%d p50_us=%d p99_us=%d " ..
		"connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
		summary.requests, summary.duration, bad, latency:percentile(50),
		latency:percentile(99), e.connect, e.read, e.write, e.timeout))
end
