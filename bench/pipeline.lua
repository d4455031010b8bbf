-- wrk script: HTTP/1.1 pipelining, DEPTH requests per write (default 16).
-- Usage: wrk -t1 -c64 -d3s -s bench/pipeline.lua http://127.0.0.1:PORT/plaintext -- 16
local batch
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  batch = table.concat(r)
end
request = function()
  return batch
end
