# -*- test-case-name: tests.test_webmail_compose -*-
"""
A webmail user's own preferences (SPEC W4, W10): signature, language and
time zone (an IANA name for zoneinfo; Asia/Seoul by default), in data/userd/ID/webmail.json (atomic write; blocking: call from a thread).
Account fields proper (name, password) stay in the account store.
"""

import json
import os

from zwms.account import check_id
from zwms.errors import InvalidValue
from zwms.fileio import atomic_write
from zwms.home import safe_join

#: Keys kept, with their defaults.
DEFAULTS = {"signature": "", "lang": "", "tz": "Asia/Seoul"}
MAX_SIGNATURE = 4000
DEFAULT_TZ = DEFAULTS["tz"]


def zones():
    """The IANA zone names zoneinfo knows, sorted (cached)."""
    global _ZONES
    if _ZONES is None:
        import zoneinfo
        _ZONES = sorted(zoneinfo.available_timezones())
    return _ZONES


_ZONES = None


def check_tz(name):
    """An IANA time zone name zoneinfo knows; raise InvalidValue."""
    name = str(name or "").strip()
    if name not in zones():
        raise InvalidValue("unknown time zone %r" % (name,))
    return name


def tzinfo(name):
    """The zoneinfo.ZoneInfo of a name (the default zone for a bad one)."""
    import zoneinfo
    try:
        return zoneinfo.ZoneInfo(check_tz(name))
    except (InvalidValue, zoneinfo.ZoneInfoNotFoundError):
        return zoneinfo.ZoneInfo(DEFAULT_TZ)


def _path(home, account_id):
    return safe_join(home.userd, check_id(account_id), "webmail.json")


def load(home, account_id):
    """The preferences (defaults for what is missing or damaged)."""
    prefs = dict(DEFAULTS)
    try:
        with open(_path(home, account_id), "rb") as f:
            stored = json.loads(f.read().decode("utf-8"))
        if isinstance(stored, dict):
            prefs.update({k: str(stored[k]) for k in DEFAULTS if k in stored})
    except (OSError, ValueError):
        pass
    return prefs


def save(home, account_id, **values):
    """
    Change some preferences (fsynced).  @raise InvalidValue: unknown key,
    or a signature too long.
    """
    prefs = load(home, account_id)
    for key, value in values.items():
        if key not in DEFAULTS:
            raise InvalidValue("unknown preference %r" % (key,))
        prefs[key] = str(value)
    if len(prefs["signature"]) > MAX_SIGNATURE or "\x00" in prefs["signature"]:
        raise InvalidValue("the signature is too long (most %d characters)" % MAX_SIGNATURE)
    check_tz(prefs["tz"])
    folder = safe_join(home.userd, check_id(account_id))
    os.makedirs(folder, exist_ok=True)
    atomic_write(_path(home, account_id), json.dumps(prefs, sort_keys=True).encode("utf-8"))
    return prefs
