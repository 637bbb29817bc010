-- Shared by read.lua and write.lua: thread numbering, non-2xx counting, a JSON summary.
-- wrk runs one Lua state per thread; setup() runs in the main state once per thread.

local threads = {}
local counter = 0

-- setup() and init() run for one thread before the next thread is made, so the number of
-- threads is passed to init() as an argument rather than counted here.
function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

non2xx = 0
statuses = {}

status_summary = ""

-- Count a response; any status outside 200-299 is an error.
function count_status(status)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      statuses[status] = (statuses[status] or 0) + 1
      local parts = {}
      for k, v in pairs(statuses) do table.insert(parts, k .. "x" .. v) end
      status_summary = table.concat(parts, ",")
      return false
   end
   return true
end

function read_lines(path)
   local out = {}
   for line in io.lines(path) do
      if #line > 0 then table.insert(out, line) end
   end
   return out
end

function split_tabs(line)
   local out = {}
   for field in string.gmatch(line .. "\t", "([^\t]*)\t") do table.insert(out, field) end
   return out
end

function done(summary, latency, requests)
   local errors = 0
   local by_status = {}
   for _, t in ipairs(threads) do
      errors = errors + (t:get("non2xx") or 0)
      local s = t:get("status_summary") or ""
      if #s > 0 then table.insert(by_status, s) end
   end
   io.write(string.format(
      '\nWRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
      '"latency_mean_us":%.1f,"latency_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
      '"statuses":"%s"}\n',
      summary.requests, summary.duration, summary.bytes, errors,
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
      summary.errors.timeout, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      table.concat(by_status, " ")))
end

