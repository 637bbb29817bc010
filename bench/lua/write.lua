-- write workload: PUT /fhir/MedicationStatement/<id> with If-Match, changing the dose.
-- args: <pool file> <bearer token> <number of wrk threads>
-- Pool file lines: entry id TAB version TAB stored dose TAB body before the dose TAB body after.
-- Each PUT sends the other of the doses 1 and 1.5 than the one stored, so every PUT is a
-- real change (a PUT that changes nothing is answered 200 but writes no new version).
-- wrk thread t owns the pool lines i with i % nthreads == t. Within a thread, an entry is
-- taken out of the free set while a request on it is in flight and put back, with the
-- version from the response's ETag, when the 200 arrives: each in-flight request owns its
-- entry, and every If-Match names the current version. (Pool entries are on distinct lists.)
package.path = package.path .. ";" .. (os.getenv("PLL_BENCH_LUA") or ".") .. "/?.lua"
require("common")

local entries = {}   -- id -> {version=, dose=, sent=, before=, after=}
local free = {}      -- ids not in flight
local owned = {}     -- all ids of this thread
local auth

function init(args)
   local nthreads = tonumber(args[3])
   local i = 0
   for _, line in ipairs(read_lines(args[1])) do
      if i % nthreads == tid then
         local f = split_tabs(line)
         entries[f[1]] = { version = tonumber(f[2]), dose = f[3], before = f[4], after = f[5] }
         table.insert(free, f[1])
         table.insert(owned, f[1])
      end
      i = i + 1
   end
   auth = "Bearer " .. args[2]
   math.randomseed(os.time() + tid * 7919)
end

function request()
   local id
   if #free > 0 then
      local k = math.random(#free)
      id = free[k]
      free[k] = free[#free]
      free[#free] = nil
   else
      -- only after errors have lost entries: take any (may be refused, and is counted)
      id = owned[math.random(#owned)]
   end
   local e = entries[id]
   local dose = (e.dose == "1.5") and "1" or "1.5"
   e.sent = dose
   local headers = {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/fhir+json",
      ["Accept"] = "application/fhir+json",
      ["If-Match"] = 'W/"' .. e.version .. '"',
      ["X-PLL-Access-Basis"] = "HPBEHANDLINGSRELASJON",
   }
   return wrk.format("PUT", "/fhir/MedicationStatement/" .. id, headers, e.before .. dose .. e.after)
end

function response(status, hdrs, body)
   if count_status(status) then
      local id = string.match(body, '"id":"([^"]+)"')
      local etag = hdrs["etag"] or hdrs["ETag"] or hdrs["Etag"]
      local e = id and entries[id]
      if e and etag then
         e.version = tonumber(string.match(etag, "(%d+)"))
         e.dose = e.sent
         table.insert(free, id)
      end
   end
end
