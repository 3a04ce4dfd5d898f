"""mitmproxy's idle cut-off in whichever form the installed mitmproxy has it.

pip installs mitmproxy 11 on Python 3.11 and mitmproxy 12 on 3.12 and later. mitmproxy 11 cuts an
idle TCP connection after the module constant ``mitmproxy.proxy.server.TCP_TIMEOUT``, read when a
connection is accepted; from 12.2.1 it is the option ``tcp_timeout``. The product handles both
(recorder/mitm/idle_timeout.py); these helpers let a test set and read it on either.
"""

from __future__ import annotations

import pytest
from mitmproxy import options
from mitmproxy.proxy import server as mitm_server

HAS_TCP_TIMEOUT_OPTION = "tcp_timeout" in options.Options()


def idle_cut_off(opts: options.Options) -> int:
    """The cut-off mitmproxy applies to connections accepted now, under options ``opts``."""
    if HAS_TCP_TIMEOUT_OPTION:
        return opts.tcp_timeout
    return mitm_server.TCP_TIMEOUT


def shorten_mitmproxys_idle_cut_off(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Make mitmproxy's own default cut-off ``seconds`` (600 as shipped) for this test."""
    if not HAS_TCP_TIMEOUT_OPTION:
        monkeypatch.setattr(mitm_server, "TCP_TIMEOUT", seconds)
        return
    original_init = options.Options.__init__

    def init(self: options.Options, **kwargs: object) -> None:
        original_init(self, **kwargs)
        if "tcp_timeout" not in kwargs:
            self.update(tcp_timeout=seconds)

    monkeypatch.setattr(options.Options, "__init__", init)
