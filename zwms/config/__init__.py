# -*- test-case-name: tests.test_config -*-
"""
Settings from data/zwms.cfg (read at start) and data/env.cfg (re-read when
it changes), as KEY=VALUE lines.  A bad line is reported with its number and
the last good value of that key stays (SPEC X4).
"""

import os
import time

from zwms.config.schema import ENV_CFG, KEYS, ZWMS_CFG, default_of, key
from zwms.errors import ConfigError, InvalidValue
from zwms.fileio import atomic_write

#: How often (seconds) env.cfg's mtime is checked; changes apply within 5 s.
RECHECK = 1.0


def read_lines(path):
    """
    Parse KEY=VALUE lines of one file.

    @return: (values, errors): a dict of parsed values by key name and a list
        of L{ConfigError} for the lines that were refused.
    """
    values, errors = {}, []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return values, errors
    text = raw.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            errors.append(ConfigError(path, number, "expected KEY=VALUE, got %r" % (line,)))
            continue
        name, _, value = line.partition("=")
        try:
            k = key(name)
            values[k.name] = k.parse(value.strip())
        except InvalidValue as e:
            errors.append(ConfigError(path, number, str(e)))
    return values, errors


def write_key(path, name, text):
    """
    Set one KEY=VALUE in a file, keeping its other lines and comments,
    atomically.
    """
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    out, done = [], False
    for line in lines:
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#"):
            if stripped.partition("=")[0].strip().upper() == name:
                if not done:
                    out.append("%s=%s" % (name, text))
                    done = True
                continue
        out.append(line)
    if not done:
        out.append("%s=%s" % (name, text))
    atomic_write(path, ("\n".join(out) + "\n").encode("utf-8"))


class Settings:
    """
    The typed values of both files.  C{settings["POP3COUNT"]} gives an int.
    zwms.cfg is read once (restart to apply); env.cfg is re-read when its
    mtime or size changes, checked at most every RECHECK seconds.
    """

    def __init__(self, home, on_error=None, now=time.monotonic):
        self.home = home
        self._on_error = on_error or (lambda error: None)
        self._now = now
        self._values = {k.name: default_of(k) for k in KEYS}
        self._env_stamp = None
        self._checked = None
        self.errors = []
        self._load(home.zwms_cfg)
        self._reload_env()

    def _stamp(self, path):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self, path):
        values, errors = read_lines(path)
        self._values.update(values)
        self.errors = [e for e in self.errors if e.path != path] + errors
        for error in errors:
            self._on_error(error)

    def _reload_env(self):
        path = self.home.env_cfg
        stamp = self._stamp(path)
        self._checked = self._now()
        if stamp == self._env_stamp:
            return
        self._env_stamp = stamp
        # A key removed from the file falls back to its default; a bad line
        # keeps the value the key had (last good).
        values, errors = read_lines(path)
        for k in KEYS:
            if k.file == ENV_CFG:
                if k.name in values:
                    self._values[k.name] = values[k.name]
                elif not any(e for e in errors if _error_key(e) == k.name):
                    self._values[k.name] = default_of(k)
        self.errors = [e for e in self.errors if e.path != path] + errors
        for error in errors:
            self._on_error(error)

    def refresh(self):
        """Re-read env.cfg now if it changed."""
        self._reload_env()

    def __getitem__(self, name):
        if self._checked is None or self._now() - self._checked >= RECHECK:
            self._reload_env()
        return self._values[key(name).name]

    def get(self, name):
        return self[name]

    def list(self, name):
        """A list-valued key split into items."""
        value = self[name]
        return [item for item in str(value).replace(" ", ",").split(",") if item]

    def set(self, name, text):
        """
        Validate and write one key to its file (atomically); env.cfg keys
        apply at once, zwms.cfg keys at restart.

        @raise InvalidValue
        """
        k = key(name)
        value = k.parse(text)
        path = self.home.zwms_cfg if k.file == ZWMS_CFG else self.home.env_cfg
        write_key(path, k.name, format_setting(value))
        if k.file == ENV_CFG:
            self._values[k.name] = value
            self._env_stamp = None
            self._reload_env()
        return value


def _error_key(error):
    """The key name a bad line tried to set, if it named one."""
    try:
        with open(error.path, "r", encoding="utf-8", errors="replace") as f:
            line = f.read().splitlines()[error.line - 1]
    except (OSError, IndexError):
        return None
    return line.partition("=")[0].strip().upper()


def format_setting(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
