"""requests-oauthlib (PyPI `requests-oauthlib`, on `oauthlib`) against
gatewise authz.

Flows (the second argument):
  client_credentials  RFC 6749 §4.4 with BackendApplicationClient; the
                      library sends client_secret_basic through requests'
                      HTTPBasicAuth, which does NOT form-urlencode the id
                      and secret first (RFC 6749 §2.3.1 says to): the server
                      accepts the raw values too.

oauthlib refuses plain http unless OAUTHLIB_INSECURE_TRANSPORT is set, even
for a loopback address; the server under test listens on 127.0.0.1 only, so
the variable is set here.

See common.py for the inputs and the output.
"""

import os

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

import oauthlib  # noqa: E402
import requests_oauthlib  # noqa: E402
from oauthlib.oauth2 import BackendApplicationClient  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402

from common import discover, env, fail, fp, jwt_claims, run  # noqa: E402


def flow_client_credentials(issuer):
    meta = discover(issuer)
    client_id = env("GW_CLIENT_ID")
    s = OAuth2Session(client=BackendApplicationClient(client_id=client_id, scope=["orders.read"]))
    tok = s.fetch_token(
        token_url=meta["token_endpoint"],
        client_id=client_id,
        client_secret=env("GW_CLIENT_SECRET"),
    )
    return {
        "token_type": tok.get("token_type"),
        "expires_in": tok.get("expires_in"),
        "scope": tok.get("scope"),
        "access_token_fp": fp(tok.get("access_token")),
        "claims": jwt_claims(tok["access_token"]),
    }


FLOWS = {"client_credentials": flow_client_credentials}


def main(issuer, flow):
    if flow not in FLOWS:
        fail(f"unknown flow {flow!r}; one of {sorted(FLOWS)}")
    out = FLOWS[flow](issuer)
    out.update(
        {
            "library": "requests-oauthlib",
            "version": requests_oauthlib.__version__,
            "oauthlib_version": oauthlib.__version__,
            "flow": flow,
        }
    )
    return out


if __name__ == "__main__":
    run(main)
