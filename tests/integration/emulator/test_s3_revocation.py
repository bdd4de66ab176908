"""The S3 stand-in refuses an access key once it has ended, as R2 does.

Cloudflare, "Temporary credentials" (developers.cloudflare.com/r2/api/s3/temporary-credentials):
"Temporary credentials are short-lived, scoped S3 credentials derived from an existing R2 API
token. They authenticate with AWS Signature Version 4, the same as a long-lived token, but include
a session token and expire automatically." A request signed with a key S3 no longer knows is
answered, in S3's own words, `403 Forbidden` with `<Code>InvalidAccessKeyId</Code><Message>The AWS
Access Key Id you provided does not exist in our records.</Message>`. Before this, moto accepted
any key forever, so nothing could show that a box kept working after its old keys ended.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fatctl.sandbox.s3 import revoke_access_key

BUCKET = "agents"


def _client(url: str, key: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key="s" * 40, aws_session_token="t" * 40)  # fmt: skip


def test_a_revoked_key_is_refused_and_others_still_work(s3_server: Any) -> None:
    old, new = _client(s3_server.url, "old-key"), _client(s3_server.url, "new-key")
    old.create_bucket(Bucket=BUCKET)
    old.put_object(Bucket=BUCKET, Key="agents/a1/MEMORY.md", Body=b"# memory\n")
    presigned = old.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "agents/a1/MEMORY.md"}
    )

    revoke_access_key(s3_server.state_dir, "old-key")

    for call in (
        lambda: old.list_objects_v2(Bucket=BUCKET, Prefix="agents/a1/"),
        lambda: old.put_object(Bucket=BUCKET, Key="agents/a1/late.md", Body=b"late"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    import httpx

    refused = httpx.get(presigned)  # signed in the query string: the same refusal
    assert refused.status_code == 403 and b"<Code>InvalidAccessKeyId</Code>" in refused.content
    # The data and every other key are untouched.
    listed = new.list_objects_v2(Bucket=BUCKET, Prefix="agents/a1/")
    assert [o["Key"] for o in listed["Contents"]] == ["agents/a1/MEMORY.md"]
