-- wrk: PUTs one small OCI image manifest (its blobs pushed beforehand by `bench.py seed`) under
-- a new tag per request: the URL ends in /manifests/, the tag is the thread's id and a counter.
--   wrk ... http://HOST/v2/REPO/manifests/ -s manifest_put.lua -- MANIFEST_FILE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local body, counter
function init(args)
  local file = assert(io.open(args[1], "rb"))
  body = file:read("*a")
  file:close()
  counter = 0
end

local headers = { ["Content-Type"] = "application/vnd.oci.image.manifest.v1+json" }
function request()
  counter = counter + 1
  return wrk.format("PUT", wrk.path .. "w" .. id .. "-" .. counter, headers, body)
end
