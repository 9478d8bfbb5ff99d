"""`nudgeflow user create` and `nudgeflow token create`."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from engine.models import ApiToken, User
from engine.users import hash_token
from tests.conftest import Db


def test_user_and_token(nf, db: Db, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert nf("user", "create", "ana", "--role", "marketer").out == \
        "user ana created (marketer)\n"
    result = nf("token", "create", "--user", "ana")
    token = result.out.splitlines()[-1]
    assert token.startswith("nf_") and len(token) > 40
    with db.engine.connect() as conn:
        user = conn.execute(select(User.name, User.role, User.password_hash)).one()
        stored = conn.execute(select(ApiToken.token_hash)).scalar_one()
    assert (user.name, user.role) == ("ana", "marketer")
    assert check_password_hash(user.password_hash, "correct horse battery")
    assert stored == hash_token(token) and token not in stored
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    bad = nf("user", "create", "ana", "--role", "admin")
    assert bad.code == 2
    assert bad.err.splitlines()[1:] == ["password: at least 10 characters",
                                        "NAME: user 'ana' already exists"]
    assert nf("token", "create", "--user", "bob").err == "error: no user 'bob'\n"
