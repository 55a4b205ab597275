"""`python -m portal.healthcheck URL`: exit 0 when URL answers 200, else print why and exit 1.

Container health checks use it (the slim image has no curl). Django rejects a Host header that
is not in ALLOWED_HOSTS, so the probe presents the first allowed host name.
"""

import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def host_header(url: str, allowed_hosts: str) -> str:
    for host in (h.strip() for h in allowed_hosts.split(",")):
        # ".example.com" allows example.com and its subdomains; "*" allows anything.
        name = host.lstrip(".")
        if name and name != "*":
            return name
    return urlsplit(url).netloc


def probe(url: str, *, allowed_hosts: str = "", timeout: float = 5.0) -> str | None:
    """None when the URL answers 200, otherwise the reason."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(f"not an http(s) URL: {url!r}")
    # The scheme is checked just above.
    request = urllib.request.Request(url, headers={"Host": host_header(url, allowed_hosts)})  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status == 200:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: {error.read(500).decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as error:
        return f"unreachable: {error}"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or urlsplit(argv[0]).scheme not in {"http", "https"}:
        print("usage: python -m portal.healthcheck http://HOST:PORT/PATH", file=sys.stderr)
        return 2
    problem = probe(argv[0], allowed_hosts=os.environ.get("ALLOWED_HOSTS", ""))
    if problem:
        print(f"{argv[0]}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
