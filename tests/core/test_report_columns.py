"""The Raw data column choice kept on the user's row (issue 15 item 14): only the user's own row, only
the report's columns, and a column the choice never saw is shown."""
from __future__ import annotations

import pytest

from core.platform.errors import NotFound, ValidationFailed
from core.reporting import report_columns
from tests.helpers.admin_helpers import make_user

KEYS = ("channel", "email", "phone", "integration")


def test_a_choice_is_kept_per_user_and_a_new_column_shows(app, services, account_id):
    alice, _ = make_user(app, "alice@example.ru", account_id=account_id)
    bob, _ = make_user(app, "bob@example.ru", account_id=account_id)
    with services.session_factory() as session:
        assert report_columns.column_choice(session, account_id, alice, KEYS) == {"order": list(KEYS), "hidden": []}
        report_columns.save_column_choice(session, account_id, alice, {"order": ["integration", "channel"], "hidden": ["email"]},
                                          KEYS[:3] + ("integration",))
        session.commit()
    with services.session_factory() as session:
        assert report_columns.column_choice(session, account_id, alice, KEYS + ("referrer",)) == {
            "order": ["integration", "channel", "email", "phone", "referrer"], "hidden": ["email"]}
        assert report_columns.column_choice(session, account_id, bob, KEYS)["hidden"] == []


@pytest.mark.parametrize("bad", [None, [], "email", {"hidden": "email"}, {"hidden": [1]}, {"order": ["password_hash"]},
                                 {"hidden": ["x" * 41]}])
def test_a_choice_that_is_not_one_is_refused(app, services, account_id, bad):
    user, _ = make_user(app, "alice@example.ru", account_id=account_id)
    with services.session_factory() as session, pytest.raises(ValidationFailed) as refused:
        report_columns.save_column_choice(session, account_id, user, bad, KEYS)
    assert refused.value.field == "columns"


def test_another_accounts_user_is_not_found(app, services, account_id):
    other, other_account = make_user(app, "eve@example.ru", account_name="Чужой")
    with services.session_factory() as session, pytest.raises(NotFound):
        report_columns.save_column_choice(session, account_id, other, {"hidden": ["email"]}, KEYS)
