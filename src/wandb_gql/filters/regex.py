"""`$regex` patterns as W&B's Go server reads them: RE2 syntax (no backreferences or lookarounds).

The local server matches with RE2 too, so a pattern this refuses would be refused there as well;
checking here means nothing is sent. re2 is imported lazily: `--help` never needs it.
"""

from __future__ import annotations


def regex_error(pattern: str) -> str | None:
    """Why RE2 cannot compile `pattern`, or None when it can."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason goes into our one-line error, not to stderr
    try:
        re2.compile(pattern, options)
    except re2.error as e:
        reason = e.args[0] if e.args else str(e)
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None
