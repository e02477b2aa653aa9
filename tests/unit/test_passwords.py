"""Password hashes by hashlib alone (core/access/passwords.py), byte-compatible with werkzeug's format: the
hashes already stored (werkzeug wrote them) still sign their users in, and werkzeug reads ours."""
from __future__ import annotations

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

from core.access.passwords import hash_password, verify_password


@pytest.mark.parametrize("method", ["scrypt", "scrypt:16384:8:1", "pbkdf2:sha256:1000", "pbkdf2:sha512:2000"])
def test_a_hash_werkzeug_wrote_still_verifies(method):
    stored = generate_password_hash("correct horse", method=method)
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct hors")
    assert not verify_password(stored, "")


def test_werkzeugs_default_scrypt_is_what_we_write_and_werkzeug_reads_ours():
    ours = hash_password("пароль-ёж 123")
    method, salt, digest = ours.split("$")
    assert method == generate_password_hash("x").split("$")[0] == "scrypt:32768:8:1"
    assert len(salt) == 16 and salt.isalnum() and len(digest) == 128
    assert check_password_hash(ours, "пароль-ёж 123") and not check_password_hash(ours, "пароль-еж 123")
    assert verify_password(ours, "пароль-ёж 123")
    assert hash_password("same") != hash_password("same")  # a new salt every time


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$salt", "md5$salt$abc", "scrypt:1:2$salt$ab",
                                    "scrypt:x:8:1$salt$ab", "pbkdf2:nohash:10$salt$ab", "pbkdf2:sha256:10:1$s$ab"])
def test_a_damaged_hash_is_a_wrong_password_not_an_error(stored):
    assert verify_password(stored, "anything") is False
