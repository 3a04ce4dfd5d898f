"""The package list, which pyproject.toml cannot say alone: every ocpp_audit package, plus the rules,
which live at the top of the repository (rules/) and ship as ocpp_audit.rules (see package-dir)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["ocpp_audit", "ocpp_audit.*"]), "ocpp_audit.rules"])
