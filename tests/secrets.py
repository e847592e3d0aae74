"""Ciphertexts in the form `pulumi config set --secret` writes them, for stack files in tests."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def ciphertext(plaintext: str, key: bytes | None = None) -> str:
    """`v1:<nonce>:<ciphertext>`: AES-256-GCM with a 12-byte nonce, as Pulumi's symmetric crypter
    (passphrase and cloud KMS secrets providers) writes it (pulumi/sdk/go/common/resource/config/crypt.go)."""
    nonce = os.urandom(12)
    sealed = AESGCM(key or AESGCM.generate_key(bit_length=256)).encrypt(nonce, plaintext.encode(), None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"
