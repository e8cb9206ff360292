#!/usr/bin/env python3
"""A bounded HTTP/1.1 flood for bench/compare-express.sh.

  flood.py HOST PORT PATH USER_AGENT REQUESTS CONNECTIONS

Sends exactly REQUESTS GET requests (no cookie) over CONNECTIONS keep-alive
connections and prints one line of JSON: requests, seconds, req/s and the
responses by status code ("error" counts requests whose connection failed).
Each response must carry Content-Length (Express and the edge send it).
"""
import asyncio
import json
import sys
import time


async def worker(host, port, request, quota, counts):
    reader = writer = None
    while quota[0] > 0:
        quota[0] -= 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status_line = await reader.readline()
            status = int(status_line.split(b" ", 2)[1])
            length = None
            close = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length is None:
                raise ValueError("response without Content-Length")
            await reader.readexactly(length)
            counts[str(status)] = counts.get(str(status), 0) + 1
            if close:
                writer.close()
                writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            counts["error"] = counts.get("error", 0) + 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def main():
    host, port, path, agent, requests, connections = sys.argv[1:7]
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"User-Agent: {agent}\r\nAccept: application/json\r\n\r\n").encode()
    quota = [int(requests)]
    counts = {}
    started = time.monotonic()
    await asyncio.gather(*(worker(host, int(port), request, quota, counts)
                           for _ in range(int(connections))))
    seconds = time.monotonic() - started
    print(json.dumps({"requests": int(requests), "seconds": round(seconds, 2),
                      "rps": round(int(requests) / seconds, 1),
                      "status": dict(sorted(counts.items()))}))


if __name__ == "__main__":
    asyncio.run(main())
