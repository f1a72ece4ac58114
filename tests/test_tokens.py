"""identity.token_verify: only the platform's signed app tokens count as tokens.

Without it any Authorization header exempts a read from the campaign counters, so a fleet
sending a made-up token per hop would pass as the platform's app."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scrapeshield.context import ContextBuilder
from scrapeshield.errors import ConfigError
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import parse_policy
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.signals.shared import is_bare

SECRET = "platform-app-secret-" + "0123456789abcdef" * 4  # 84 bytes: long enough for HS512
NOW = 1_800_000_000.0
ROUTES = "routes:\n  - {name: p, path: '/api/v1/users/{id:int}', record: id}\n"


def policy(verify: str = "{key_env: APP_TOKEN_KEY, issuer: murmur}") -> CompiledPolicy:
    return parse_policy(f"identity: {{token_verify: {verify}}}\n{ROUTES}")


def token_of(policy: CompiledPolicy, header: str | None, now: float = NOW) -> str:
    headers = [("user-agent", "SocialApp/5.2"), ("accept", "application/json")]
    if header is not None:
        headers.append(("authorization", header))
    ctx = ContextBuilder(policy).build(now, "203.0.113.9", "GET", "/api/v1/users/7", headers)
    assert ctx.record == "user:7"
    return ctx.token


def signed(key: object = SECRET, algorithm: str = "HS256", **claims: object) -> str:
    body = {"sub": "42", "iss": "murmur", "exp": NOW + 3600, **claims}
    return "Bearer " + jwt.encode(body, key, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN_KEY", SECRET)


def test_a_signed_token_counts_and_its_raw_value_is_not_kept() -> None:
    header = signed()
    token = token_of(policy(), header)
    assert token and header.split()[1] not in token


@pytest.mark.parametrize("header", [
    "Bearer made-up-token-1234",
    signed(key="another-secret-entirely-" + "x" * 64),  # forged signature
    signed(iss="someone-else"),
    signed(exp=NOW - 3600),  # expired at the request's time
    signed(nbf=NOW + 3600),  # not valid yet
    signed(algorithm="HS512"),  # an algorithm the policy does not allow
    signed().replace("Bearer ", "Token "),  # not the policy's scheme
    "Bearer " + jwt.encode({"sub": "42", "iss": "murmur"}, SECRET),  # no expiry
    "Bearer",
    "Bearer \x00\xff" + "A" * 3000,
])
def test_a_token_the_platform_did_not_sign_is_no_token(header: str) -> None:
    assert token_of(policy(), header) == ""


def test_expiry_is_judged_at_the_request_time_so_replays_see_tokens_as_they_were() -> None:
    header = signed(exp=NOW + 60)
    checked = policy()
    builder = ContextBuilder(checked)
    for now, counts in ((NOW, True), (NOW + 120, False), (NOW - 10, True)):  # memo reused
        ctx = builder.build(now, "203.0.113.9", "GET", "/api/v1/users/7", [("authorization", header)])
        assert bool(ctx.token) is counts, now


def test_a_fleet_with_made_up_tokens_reads_bare_and_the_app_does_not() -> None:
    """What the campaign counters see: a bare read for the fake token, the app's read for a real one."""
    checked = policy()
    builder = ContextBuilder(checked)
    fake = builder.build(NOW, "203.0.113.9", "GET", "/api/v1/users/7", [("authorization", "Bearer x1")])
    real = builder.build(NOW, "203.0.113.9", "GET", "/api/v1/users/7", [("authorization", signed())])
    assert is_bare(fake) and not is_bare(real)
    unchecked = ContextBuilder(parse_policy(ROUTES)).build(
        NOW, "203.0.113.9", "GET", "/api/v1/users/7", [("authorization", "Bearer x1")])
    assert not is_bare(unchecked), "without token_verify any token still counts (the old behaviour)"


def test_a_public_key_verifies_asymmetric_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("APP_TOKEN_KEY", pem.decode())
    checked = policy("{key_env: APP_TOKEN_KEY, algorithms: [EdDSA], audience: app}")
    assert token_of(checked, signed(key=private, algorithm="EdDSA", aud="app"))
    assert token_of(checked, signed(key=private, algorithm="EdDSA", aud="web")) == ""
    assert token_of(checked, signed()) == ""  # an HS256 token with the PEM as its secret


def test_a_missing_key_is_a_clear_error_and_a_reload_keeps_the_running_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APP_TOKEN_KEY")
    with pytest.raises(ConfigError, match="APP_TOKEN_KEY"):
        ContextBuilder(policy())
    path = tmp_path / "policy.yaml"
    path.write_text(ROUTES)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(path)))
    try:
        running = shield.engine.policy
        path.write_text(f"identity: {{token_verify: {{key_env: APP_TOKEN_KEY}}}}\n{ROUTES}")
        problems = shield.reload()
        assert problems and "APP_TOKEN_KEY" in problems[0]
        assert shield.engine.policy is running
    finally:
        shield.close()
