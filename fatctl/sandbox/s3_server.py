"""The S3 stand-in's server process: moto's S3 behind the check that refuses ended keys.

Run by `fatctl.sandbox.s3.start_s3` as `python -m fatctl.sandbox.s3_server HOST PORT STATE_DIR`;
the keys it refuses are the ones `s3.revoke_access_key` listed in STATE_DIR (see `s3`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from fatctl.sandbox.s3 import revoked_keys

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_REFUSAL = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>'
    "<Message>The AWS Access Key Id you provided does not exist in our records.</Message>"
    "<AWSAccessKeyId>{key}</AWSAccessKeyId></Error>"
)


def signing_key_id(environ: dict[str, Any]) -> str | None:
    """The access key id a request is signed with: SigV4's `Authorization: AWS4-HMAC-SHA256
    Credential=<key>/<date>/...` or presigned `X-Amz-Credential=<key>/...`; SigV2's
    `Authorization: AWS <key>:<signature>` or presigned `AWSAccessKeyId=<key>`."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    found = _CREDENTIAL.search(header)
    if found:
        return found.group(1)
    if header.startswith("AWS "):
        return header[4:].split(":", 1)[0]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    v4 = query.get("X-Amz-Credential", [""])[0].split("/", 1)[0]
    return v4 or query.get("AWSAccessKeyId", [""])[0] or None


def gated(app: Any, state_dir: Path) -> Any:
    """Moto's WSGI app behind the revocation check (read per request: another process revokes)."""

    def gate(environ: dict[str, Any], start_response: Any) -> Any:
        key = signing_key_id(environ)
        if key is not None and key in revoked_keys(state_dir):
            body = _REFUSAL.format(key=key).encode()
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(body)))])  # fmt: skip
            return [body]
        return app(environ, start_response)

    return gate


def _serve(host: str, port: int, state_dir: Path) -> None:
    app = gated(DomainDispatcherApplication(create_backend_app), state_dir)
    make_server(host, port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
