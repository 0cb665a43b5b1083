"""Listing parameters shared by every service: the filter check names the field and what is
allowed, and lets None (no filter) through."""

from __future__ import annotations

import pytest

from edgeloop.errors import ValidationFailed
from edgeloop.pages import check_choice


def test_check_choice_passes_none_and_allowed_values() -> None:
    assert check_choice(None, ("open", "resolved"), "status") is None
    assert check_choice("open", ("open", "resolved"), "status") == "open"


def test_check_choice_names_the_field_and_the_choices() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_choice("closed", ("open", "resolved"), "status")
    assert str(caught.value) == "status 'closed' is not one of open, resolved"
    assert caught.value.details == {"field": "status"}
