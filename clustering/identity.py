"""What makes two posts the same article, and which outlet an article is from.

A crawler sees one article under many URLs (tracking parameters, a trailing slash, an
explicit default port): ``canonical_url`` is the one form the service keys articles by.
When a client names no outlet, the URL's host does (``outlet``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid")


def canonical_url(url: str) -> str:
    """The idempotency form of a URL: lower-case scheme and host, no default port,
    no fragment, no tracking parameters, remaining parameters sorted.

    >>> canonical_url("HTTPS://Example.com:443/a/b/?utm_source=x&b=2&a=1#top")
    'https://example.com/a/b?a=1&b=2'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)
    )
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def outlet(source: str | None, url: str | None) -> str | None:
    """The outlet: ``source`` if given, else the url's host without ``www.``.

    >>> outlet(None, "https://www.example.com/a"), outlet("Reuters", "https://example.com/a")
    ('example.com', 'Reuters')
    """
    if source:
        return source
    if url:
        host = urlsplit(url).hostname or ""
        return host.removeprefix("www.") or None
    return None
