"""The practice's signing key for SMART Backend Services, and the public JWKS an EHR registers.

The private key lives in the data dir's key folder (file mode 0600), never in the database or in
logs. `kid` is the key's RFC 7638 thumbprint, so the same key always has the same id and an EHR
can tell keys apart after a rotation. A rotation keeps the previous key's public half in the JWKS:
EHRs cache a registered JWKS URL, and an assertion signed with the new key must not fail while
their cache still holds only the old one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from clinicflow.errors import ConfigError, SecurityError
from clinicflow.settings import EHR_SIGNING_KEY_FILE as SIGNING_KEY_FILE

PREVIOUS_KEY_FILE = "ehr-signing-key.previous.pem"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SigningAlg(StrEnum):
    """The JWT algorithms SMART Backend Services requires servers to accept."""

    RS384 = "RS384"
    ES384 = "ES384"


@dataclass(frozen=True)
class SigningKey:
    """A private key with the algorithm and key id its assertions carry."""

    private_key: PrivateKey
    alg: SigningAlg
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with the `kid`, `alg` and `use` an EHR expects."""
        return {
            **_public_members(self.private_key),
            "kid": self.kid,
            "alg": str(self.alg),
            "use": "sig",
            "key_ops": ["verify"],
        }


def _public_members(key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the required members, sorted, no spaces."""
    required = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signing_key(private_key: PrivateKey) -> SigningKey:
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise SecurityError("The EHR signing key is RSA under 2048 bits; make a new one.")
        alg = SigningAlg.RS384
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP384R1):
            raise SecurityError("ES384 needs a P-384 key; this one is on another curve.")
        alg = SigningAlg.ES384
    else:  # pragma: no cover - load_key already narrowed the type
        raise SecurityError("The EHR signing key is neither RSA nor EC.")
    return SigningKey(private_key, alg, thumbprint(_public_members(private_key)))


def generate_key(alg: SigningAlg) -> SigningKey:
    """A new key for `alg`: RSA 3072 for RS384 (NIST's level past 2030), P-384 for ES384."""
    private_key: PrivateKey
    if alg is SigningAlg.RS384:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        private_key = ec.generate_private_key(ec.SECP384R1())
    return _signing_key(private_key)


def load_key(path: Path) -> SigningKey:
    """Read a PEM private key; ConfigError says what to run when it is missing or unreadable."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"No EHR signing key at {path}. Run `clinicflow ehr keygen` (or set "
            "CLINICFLOW_FHIR_KEY_PATH), then register the JWKS URL with the EHR."
        ) from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key ({exc}).") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}; SMART needs RSA or EC P-384.")
    return _signing_key(key)


def _write_private(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    # Created 0600 from the first byte: never a moment when the key is readable by others.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(temp, path)


def write_new_key(keys_dir: Path, alg: SigningAlg, *, rotate: bool = False) -> SigningKey:
    """Generate and store the practice's signing key; with `rotate`, keep the old one's JWK."""
    current = keys_dir / SIGNING_KEY_FILE
    if current.exists() and not rotate:
        raise ConfigError(
            f"An EHR signing key already exists at {current}. Use --rotate to replace it "
            "(the old public key stays in the JWKS so the EHR can switch over)."
        )
    key = generate_key(alg)
    if current.exists():
        os.replace(current, keys_dir / PREVIOUS_KEY_FILE)
    _write_private(current, key.private_key)
    return key


def public_jwks(keys_dir: Path, key_path: Path | None = None) -> dict[str, Any]:
    """The JWKS to publish: the current key, then the previous one if a rotation kept it."""
    keys = []
    for path in (key_path or keys_dir / SIGNING_KEY_FILE, keys_dir / PREVIOUS_KEY_FILE):
        if path.exists():
            keys.append(load_key(path).public_jwk())
    return {"keys": keys}
