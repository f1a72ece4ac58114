-- Spreads requests over 100,000 simulated clients in 65,536 /24 networks
-- (X-Forwarded-For from a trusted proxy) with a browser's headers, reading
-- profiles and the home page.
local counter = 0
request = function()
  counter = counter + 1
  local client = (counter * 7919) % 100000
  local ip = string.format("10.%d.%d.%d", client % 256, math.floor(client / 256) % 256,
                           math.floor(client / 65536) + 1)
  local path = "/"
  if counter % 3 == 0 then path = "/u/user" .. (counter % 10000) end
  return wrk.format("GET", path, {
    ["X-Forwarded-For"] = ip,
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    ["Accept"] = "text/html,*/*;q=0.8",
    ["Accept-Encoding"] = "gzip, deflate, br",
    ["Accept-Language"] = "en-GB,en;q=0.9",
    ["Sec-Ch-Ua"] = '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"',
    ["Sec-Fetch-Mode"] = "navigate",
  })
end
