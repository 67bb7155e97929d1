"""Identities of the test GitHub App and its fake installations."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = 4242
APP_SLUG = "aac-test"
BOT_LOGIN = f"{APP_SLUG}[bot]"
INSTALLATION_ID = 77
OWNER = "octo-org"
REPOSITORY = f"{OWNER}/widgets"
PAT = "ghp_" + "T0k3n" * 8
PAT_LOGIN = "ci-user"


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
