"""The aws fixture gives the handlers the environment template.yaml gives the functions: every variable
the template sets (Globals' and each function's own) has a test value in ENVIRONMENT, and no other."""

from __future__ import annotations

import os

from tests.integration.conftest import ENVIRONMENT, MOTO, Aws
from tests.support.artefacts import template_variables


def test_the_fixture_names_every_variable_the_template_sets_and_no_other() -> None:
    names = template_variables()

    assert sorted(names - ENVIRONMENT.keys()) == [], "set in template.yaml, missing from ENVIRONMENT"
    assert sorted(ENVIRONMENT.keys() - names) == [], "in ENVIRONMENT, no longer set by template.yaml"


def test_the_template_variables_are_read_from_globals_and_from_functions() -> None:
    names = template_variables()

    assert {"MASKGATE_TABLE", "WAVESPEED_API_KEY_SECRET"} <= names  # Globals
    assert {"MASKGATE_WEBHOOK_DLQ_URL", "MASKGATE_RECONCILE_GRACE_SECONDS"} <= names  # functions' own


def test_the_handlers_see_each_variable_as_the_fixture_table_says(aws: Aws) -> None:
    for name, value in ENVIRONMENT.items():
        if value is MOTO:
            assert os.environ[name].startswith(("arn:aws:", "https://")), name
        elif value is None:
            assert name not in os.environ, name
        else:
            assert os.environ[name] == value, name
