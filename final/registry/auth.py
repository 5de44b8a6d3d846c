# chapter: 06
"""Who may pull and push: passwords, Basic auth, and Docker-Hub-style tokens.

The password file (`--htpasswd`) has one line per user, made by
`registry passwd FILE USER`:

    alice:pbkdf2-sha256$200000$<salt, base64>$<hash, base64>

PBKDF2 (hashlib, standard library) with a random 16-byte salt: a stolen
file gives no password without 200 000 HMAC rounds per guess.

Basic auth sends the password with every request. Token auth, as Docker Hub
does it, sends it once: the registry answers 401 with

    WWW-Authenticate: Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"

the client asks the realm for a token for that scope, and shows the token
from then on. Our tokens are `base64(claims).base64(HMAC-SHA256(secret, claims))`:
the server that signs them is the only one that can check them, and that is
all a single registry needs.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import threading
import time

PBKDF2_ITERATIONS = 200_000
TOKEN_LIFETIME = 300  # seconds, like Docker Hub
ACTIONS = ("pull", "push", "delete")


# --- passwords -------------------------------------------------------------------

def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A salted PBKDF2-SHA256 hash in the password file's format."""
    salt = os.urandom(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2-sha256${iterations}${b64(salt)}${b64(derived)}"


def verify_password(stored: str, password: str) -> bool:
    """True if `password` matches a hash made by hash_password."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        assert scheme == "pbkdf2-sha256" and 0 < int(iterations) <= 10_000_000
        derived = hashlib.pbkdf2_hmac("sha256", password.encode(), unb64(salt), int(iterations))
        return hmac.compare_digest(derived, unb64(expected))
    except (ValueError, AssertionError, binascii.Error):
        return False


def load_passwords(path: str) -> dict[str, str]:
    """Read a password file: user -> stored hash."""
    users = {}
    with open(path) as f:
        for line in f:
            user, colon, stored = line.strip().partition(":")
            if colon and not user.startswith("#"):
                users[user] = stored
    return users


class Passwords:
    """Checks `Authorization: Basic` headers, remembering what it already verified."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.verified: set[bytes] = set()  # sha256 of good "user:password": PBKDF2 is slow on purpose
        self.lock = threading.Lock()

    def check_basic(self, header: str) -> str | None:
        """The user named by a valid Basic header, or None."""
        scheme, _, encoded = header.partition(" ")
        try:
            assert scheme.lower() == "basic"
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (AssertionError, binascii.Error, UnicodeDecodeError):
            return None
        return user if self.check(user, password) else None

    def check(self, user: str, password: str) -> bool:
        key = hashlib.sha256(f"{user}:{password}".encode()).digest()
        with self.lock:
            if key in self.verified:
                return True
        if user in self.users and verify_password(self.users[user], password):
            with self.lock:
                self.verified.add(key)
            return True
        return False


# --- scopes and tokens ---------------------------------------------------------------

def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """`repository:library/x:pull,push` -> ("repository", "library/x", {"pull", "push"})."""
    kind, _, rest = scope.partition(":")
    name, colon, actions = rest.rpartition(":")
    if not colon or not kind or not name:
        return None
    return kind, name, {a for a in actions.split(",") if a}


def format_scope(kind: str, name: str, actions: list[str]) -> str:
    return f"{kind}:{name}:{','.join(actions)}"


class Tokens:
    """Issues and checks HMAC-signed bearer tokens for one registry."""

    def __init__(self, realm: str, service: str, secret: bytes | None = None) -> None:
        self.realm, self.service = realm, service
        self.secret = secret or os.urandom(32)

    def issue(self, user: str, access: list[dict]) -> dict:
        """The token endpoint's JSON answer for `user` granted `access`."""
        now = int(time.time())
        claims = {"iss": self.service, "sub": user, "aud": self.service, "iat": now,
                  "exp": now + TOKEN_LIFETIME, "access": access}
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{payload}.{b64(self.sign(payload))}"
        return {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}

    def sign(self, payload: str) -> bytes:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()

    def check(self, header: str) -> dict | None:
        """The claims of a valid, unexpired `Authorization: Bearer` token, or None."""
        scheme, _, token = header.partition(" ")
        payload, _, signature = token.strip().partition(".")
        try:
            if scheme.lower() != "bearer" or not hmac.compare_digest(self.sign(payload), unb64(signature)):
                return None
            claims = json.loads(unb64(payload))
        except (ValueError, binascii.Error):
            return None
        ok = isinstance(claims, dict) and claims.get("aud") == self.service and claims.get("exp", 0) > time.time()
        return claims if ok else None

    def challenge(self, scope: str | None) -> str:
        """The WWW-Authenticate header that sends a client to our token endpoint."""
        header = f'Bearer realm="{self.realm}",service="{self.service}"'
        return header + (f',scope="{scope}"' if scope else "")


def allows(claims: dict, kind: str, name: str, action: str) -> bool:
    """True if a token's claims grant `action` on `kind:name`."""
    for entry in claims.get("access", []):
        if entry.get("type") == kind and entry.get("name") == name:
            actions = entry.get("actions", [])
            if action in actions or "*" in actions:
                return True
    return False


# --- the client's side ---------------------------------------------------------------

CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y"` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
