# -*- test-case-name: tests.test_store -*-
"""
Password hashes for accounts and the /admin login.

argon2id (argon2-cffi's C{PasswordHasher}) is used because it is the
winner of the Password Hashing Competition and the first choice of the
OWASP password storage guidance: it is memory-hard, so guessing with GPUs
or ASICs costs far more than with PBKDF2 or bcrypt; the encoded hash
(C{$argon2id$v=19$m=…,t=…,p=…$salt$hash}) carries its own salt and
parameters, so stronger parameters can be adopted later without breaking
old hashes (L{needs_rehash} tells when to re-hash at the next login).

A verify costs about 0.1 s of CPU with the default parameters: callers run
it in a thread (C{deferToThread}), never in the reactor thread.  Tests call
L{use_test_hasher} to get cheap parameters (the hashes stay valid argon2id).
"""

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: The hasher used in production (argon2-cffi's defaults, RFC 9106 "low memory").
DEFAULT_HASHER = PasswordHasher()

#: Cheap parameters for tests only: 8 KiB, one pass.
FAST_FOR_TESTS = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

_hasher = DEFAULT_HASHER


def use_test_hasher(enabled=True):
    """
    Make new hashes cheap (tests only); C{use_test_hasher(False)} goes back
    to the default parameters.  Verification works for both kinds anyway:
    the parameters are read from each hash.
    """
    global _hasher
    _hasher = FAST_FOR_TESTS if enabled else DEFAULT_HASHER


#: argon2 takes 64 MiB per hash: at most this many at once, whatever the
#: number of threads asking (ten parallel logins would otherwise need 640 MiB).
MAX_CONCURRENT = 2
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


def _check_password_text(password):
    if not isinstance(password, str):
        raise TypeError("a password is text (str)")


def hash_password(password):
    """
    @param password: the password (C{str}).
    @return: the encoded argon2id hash (C{str}, one line).
    """
    _check_password_text(password)
    with _slots:
        return _hasher.hash(password)


def verify_password(stored_hash, password):
    """
    Check C{password} against C{stored_hash}.  Never raises for a wrong,
    empty or garbage hash (it is then simply not a match).

    @return: L{True} if it matches.
    """
    if not isinstance(stored_hash, str) or not stored_hash.startswith("$argon2"):
        return False
    if not isinstance(password, str):
        return False
    try:
        with _slots:
            return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    except Exception:
        # argon2 raises ValueError-likes for malformed parameters; a damaged
        # hash must refuse the login, not crash the caller.
        return False


def needs_rehash(stored_hash):
    """True when C{stored_hash} was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except Exception:
        return True
