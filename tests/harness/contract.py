"""The API contract's shapes: KEY_RE, RFC3339_UTC, RFC3339_NS, assert_error(),
fnv1a32() and slow_pastry() (the baker's simulated bake time), parse_prometheus()."""

import re


KEY_RE = re.compile(r"^[0-9a-f]{32}$")  # an orderKey
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")


def assert_error(r, status):
    """Asserts r has status and a JSON body {"error": "<non-empty string>"}."""
    assert r.status == status, r
    assert r.header("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], r


def fnv1a32(s):
    """FNV-1a 32-bit of s's UTF-8, the hash the baker's simulated bake time comes from."""
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def slow_pastry(min_ms, prefix="pastry"):
    """A pastry name whose bake round takes at least min_ms (of at most 99) x BAKE_TIME_SCALE."""
    return next(p for p in (f"{prefix}-{i}" for i in range(10000)) if fnv1a32(p) % 100 >= min_ms)



def parse_prometheus(text):
    """Parses Prometheus text format into {(name, frozenset(labels.items())): float}.

    Raises ValueError on a line that is not a comment, blank, or `name{labels} value [ts]`.
    """
    samples = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
    label_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            raise ValueError(f"not a Prometheus sample: {line!r}")
        labels = {}
        rest = m.group(3) or ""
        pos = 0
        while pos < len(rest):
            lm = label_re.match(rest, pos)
            if not lm:
                raise ValueError(f"bad labels in {line!r}")
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples
