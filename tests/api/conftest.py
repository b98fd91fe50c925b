"""Fixtures the API tests share: a teacher and one class of theirs (tests/support/classrooms.py)."""

import pytest

from tests.support.classrooms import classroom, teacher


@pytest.fixture
def ada():
    return teacher("ada")


@pytest.fixture
def room(ada):
    return classroom(ada, "First")
