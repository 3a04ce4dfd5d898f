"""Shared test settings. Integration tests use real sockets on 127.0.0.1, port 0."""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

import pytest

# The engine fixtures (recorder in front of a backend, for both engines) serve many test files.
pytest_plugins = ["tests.engines"]

# One factor that a slow machine can raise: every wait in the tests is multiplied by it.
TIMEOUT_FACTOR = float(os.environ.get("OCPP_AUDIT_TIMEOUT_FACTOR", "1"))


def pytest_configure(config: pytest.Config) -> None:
    # On CPython 3.13.0 (pyenv's 3.13 on the CI machine) pytest's long tracebacks crash the
    # interpreter (a segmentation fault reading a frame's arguments through f_locals), so a
    # failing test took the run and its summary line with it. Short tracebacks do not read them.
    if sys.version_info[:3] == (3, 13, 0) and config.option.tbstyle == "auto":
        config.option.tbstyle = "short"
    # pytest-xdist (3.6 on) hands out the files with the most tests first, whatever the collection
    # order; SLOW_FILES below only takes effect with that reordering off.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


# The files that take longest (measured under `pytest -n 3 --dist loadfile`), longest first.
# pytest-xdist hands whole files to its processes in collection order, so a long file collected
# late would run alone at the end while the other processes idle: these are collected first.
SLOW_FILES = (
    "test_sap_guided_acceptance.py",  # the guided run against the SAP simulator: 2-3 min
    "test_sap_simulator.py",
    "test_spark.py",
    "test_readme_examples.py",
    "test_v201_e2e.py",
    "test_reliability.py",
    "test_acceptance_e2e.py",
    "test_acceptance.py",
    "test_rule_cases.py",
    "test_recorded_pairing.py",
    "test_rules.py",
    "test_bench_smoke.py",
    "test_html_report.py",
    "test_simulator.py",
    "test_shards.py",
    "test_mirror.py",
    "test_object_storage.py",
    "test_progress.py",
    "test_rules_v201.py",
    "test_import_equivalence.py",
    "test_bad_input.py",
    "test_address_budget.py",
    "test_report_hostile.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOW_FILES)}
    items.sort(
        key=lambda item: rank.get(item.path.name, len(SLOW_FILES))
    )  # stable: file order kept


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_FACTOR


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
