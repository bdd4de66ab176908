"""The masking every line of the call log passes through (fatctl.calllog): by shape (URL
passwords and secret-named parameters, credential headers, `NAME=value` in commands) and by
value (every secret revealed in this process)."""

from __future__ import annotations

from fatctl.calllog import mask_command, mask_headers, mask_url
from fatctl.sensitive import Sensitive


def test_urls_headers_and_commands_are_masked() -> None:
    assert mask_url("https://u:pw@h/v1/ssh_keys?page=1&per_page=50") == (
        "https://u:***@h/v1/ssh_keys?page=1&per_page=50"  # ssh_keys is a path, not a secret
    )
    assert mask_url("https://h/p?label_selector=a%3Db&signature=abc") == (
        "https://h/p?label_selector=a%3Db&signature=***"
    )
    assert mask_headers({"Authorization": "Bearer abc123", "Accept": "application/json"}) == (
        "Authorization: Bearer ***; Accept: application/json"
    )
    line = mask_command("API_KEY='s e c' OTHER=plain env FOO=\"x y\" run --flag=kept")
    assert line == "API_KEY=*** OTHER=*** env FOO=*** run --flag=kept"


def test_every_revealed_secret_is_masked_wherever_it_appears() -> None:
    secret = Sensitive("tok-5b0f9e2c41d7")
    assert mask_command("echo tok-5b0f9e2c41d7") == "echo tok-5b0f9e2c41d7"  # not revealed yet
    secret.reveal()
    assert mask_command("echo tok-5b0f9e2c41d7") == "echo ***"
    assert mask_url("https://h/p?x=tok-5b0f9e2c41d7") == "https://h/p?x=***"
