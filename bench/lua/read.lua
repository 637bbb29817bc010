-- read workload: GET /fhir/List?patient=<random patient>&_include=List:item
-- args: <file of patient ids, one a line> <bearer token>
package.path = package.path .. ";" .. (os.getenv("PLL_BENCH_LUA") or ".") .. "/?.lua"
require("common")

local ids
local headers

function init(args)
   ids = read_lines(args[1])
   headers = {
      ["Authorization"] = "Bearer " .. args[2],
      ["Accept"] = "application/fhir+json",
      ["X-PLL-Access-Basis"] = "HPBEHANDLINGSRELASJON",
   }
   math.randomseed(os.time() + tid * 7919)
end

function request()
   local id = ids[math.random(#ids)]
   return wrk.format("GET", "/fhir/List?patient=" .. id .. "&_include=List:item", headers)
end

function response(status, hdrs, body)
   count_status(status)
end
