"""What the interop scripts share: their inputs, the login form, the output.

Each script is run by a Rust test (crates/gatewise-authz/tests/interop_python.rs)
against `gatewise authz` on 127.0.0.1:

    python SCRIPT.py ISSUER FLOW

with the client's credentials and the user's in the environment (never on the
command line, where `ps` shows them): GW_CLIENT_ID, GW_CLIENT_SECRET,
GW_REDIRECT_URI, GW_USERNAME, GW_PASSWORD. A script prints one JSON object on
stdout and exits 0, or prints what went wrong on stderr and exits 1. Neither
ever contains a secret, a token or a code in clear: only their SHA-256
fingerprints (`fp`).
"""

import base64
import hashlib
import json
import os
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


def env(name):
    value = os.environ.get(name)
    if not value:
        fail(f"the environment variable {name} is not set")
    return value


def fail(message):
    print(f"interop failure: {message}", file=sys.stderr)
    sys.exit(1)


def fp(secret):
    """A fingerprint of a secret value, safe to print."""
    if secret is None:
        return None
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def jwt_claims(token):
    """The payload of a JWT, unverified (what the token says; the scripts
    verify signatures where the library offers it), or None when the token
    is not a JWT (an opaque token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def jwt_header(token):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header = parts[0] + "=" * (-len(parts[0]) % 4)
    return json.loads(base64.urlsafe_b64decode(header))


def discover(issuer):
    """The OpenID Connect discovery document (the metadata is the same at
    /.well-known/oauth-authorization-server)."""
    r = requests.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=30)
    r.raise_for_status()
    return r.json()


class _FormParser(HTMLParser):
    """Finds the first <form> of a page with its inputs."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.method = None
        self.fields = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = a.get("action")
            self.method = (a.get("method") or "get").lower()
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def sign_in(authorization_url, redirect_uri, username, password):
    """Plays the user's browser: opens the authorization URL, fills in the
    login form as served (hidden fields included), submits it and follows
    redirects until one points at the client's redirect URI. That URI is
    never requested (nothing listens there); its full URL is returned."""
    browser = requests.Session()
    page = browser.get(authorization_url, allow_redirects=False, timeout=30)
    if page.status_code != 200:
        fail(f"the authorization endpoint answered {page.status_code}, not the login page")
    form = _FormParser()
    form.feed(page.text)
    if form.action is None or form.method != "post":
        fail("the login page has no <form method=post>")
    data = []
    for name, value in form.fields:
        if name == "username":
            value = username
        elif name == "password":
            value = password
        data.append((name, value))
    names = [n for n, _ in data]
    if "username" not in names or "password" not in names:
        fail(f"the login form has no username/password fields: {names}")
    url = urljoin(page.url, form.action)
    resp = browser.post(url, data=data, allow_redirects=False, timeout=30)
    for _ in range(5):
        if resp.status_code not in (301, 302, 303, 307, 308):
            fail(f"signing in answered {resp.status_code} instead of a redirect to the client")
        location = urljoin(resp.url, resp.headers["Location"])
        if location.split("?")[0] == redirect_uri.split("?")[0]:
            return location
        resp = browser.get(location, allow_redirects=False, timeout=30)
    fail("more than five redirects after signing in")


def run(main):
    """Runs `main(issuer, flow)`, prints its result as JSON, and turns any
    exception into exit status 1 with a message on stderr."""
    if len(sys.argv) != 3:
        fail(f"usage: {sys.argv[0]} ISSUER FLOW")
    issuer, flow = sys.argv[1], sys.argv[2]
    try:
        out = main(issuer, flow)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - report whatever the library raised
        traceback.print_exc(file=sys.stderr)
        fail(f"{type(e).__module__}.{type(e).__name__}: {e}")
    print(json.dumps(out, sort_keys=True))
