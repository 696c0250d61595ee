"""Key pair material: checking imported keys, fingerprints, generating pairs.

``ssh`` keys are OpenSSH public key lines (RSA, ECDSA, Ed25519, as
``ssh-keygen`` writes them); their fingerprint is Nova's: the MD5 of the key
blob in colon-separated hex. ``x509`` keys are PEM certificates, whose
fingerprint is the SHA-1 of the DER certificate. A generated pair is RSA 2048;
the private key is returned once and never stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TYPES = ("ssh", "x509")


class InvalidKey(ValueError):
    """The public key cannot be used; the message says why."""


@dataclass(frozen=True)
class Material:
    public_key: str
    fingerprint: str
    private_key: str | None = None


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise InvalidKey("the key is not of the form '<type> <base64 data> [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey(f"the key data is not base64: {exc}") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).digest())


def check_ssh(public_key: str) -> Material:
    text = public_key.strip()
    try:
        serialization.load_ssh_public_key(text.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidKey(f"not an OpenSSH public key: {exc}") from None
    except Exception as exc:  # unsupported algorithms
        raise InvalidKey(f"not a usable OpenSSH public key: {exc}") from None
    return Material(text, ssh_fingerprint(text))


def check_x509(certificate: str) -> Material:
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidKey(f"not a PEM X.509 certificate: {exc}") from None
    der = cert.public_bytes(serialization.Encoding.DER)
    return Material(certificate, _colons(hashlib.sha1(der, usedforsecurity=False).digest()))


def check(key_type: str, public_key: str) -> Material:
    return check_x509(public_key) if key_type == "x509" else check_ssh(public_key)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def generate(key_type: str, owner: str) -> Material:
    """A new pair of ``key_type`` for the user ``owner`` (an X.509 certificate's CN)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "x509":
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, owner or "stratus")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        material = check_x509(cert.public_bytes(serialization.Encoding.PEM).decode())
        return Material(material.public_key, material.fingerprint, _private_pem(key))
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public = f"{line.decode()} Generated-by-Stratus"
    return Material(public, ssh_fingerprint(public), _private_pem(key))
