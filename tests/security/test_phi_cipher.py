"""The cipher's nonces: never repeated, in one process or across a fork."""

from __future__ import annotations

import os

import pytest

from clinicflow.errors import SecurityError
from clinicflow.security.phi import Keyring, PhiCipher

NONCE = slice(5, 17)  # format byte, 4-byte key id, then the 12-byte nonce


def test_nonces_do_not_repeat_across_many_pool_refills() -> None:
    cipher = PhiCipher(Keyring.generate())
    nonces = {cipher.encrypt(b"x", b"aad")[NONCE] for _ in range(5000)}  # ~5 refills of the pool
    assert len(nonces) == 5000


def test_a_forked_child_does_not_reuse_the_parents_pending_nonces() -> None:
    cipher = PhiCipher(Keyring.generate())
    cipher.encrypt(b"x", b"aad")  # the parent now holds a partly used pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next nonce and leave without running pytest's teardown
        os.write(write_end, cipher.encrypt(b"x", b"aad")[NONCE])
        os._exit(0)
    os.close(write_end)
    child_nonce = os.read(read_end, 12)
    os.waitpid(pid, 0)
    assert len(child_nonce) == 12
    assert child_nonce != cipher.encrypt(b"x", b"aad")[NONCE]


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    cipher = PhiCipher(Keyring.generate())
    blob = cipher.encrypt(b"Jane Doe", b"Patient/1")
    assert cipher.decrypt(blob, b"Patient/1") == b"Jane Doe"
    with pytest.raises(SecurityError):
        cipher.decrypt(blob, b"Patient/2")
