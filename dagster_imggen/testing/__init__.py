"""Testing helpers: ``ProviderEmulator``, a loopback server of every provider's wire format.

See ``dagster_imggen.testing.emulator`` for the full API; the pytest plugin
(``dagster_imggen.testing.pytest_plugin``) provides the ``imggen_emulator`` fixture.
"""

from ._faults import FAULT_KINDS, FaultSpec
from ._record import Billed, BilledCall, RecordedFile, RecordedRequest, key_fingerprint
from .emulator import PROVIDERS, ProviderEmulator, ProviderSettings, serve

__all__ = [
    "FAULT_KINDS",
    "PROVIDERS",
    "Billed",
    "BilledCall",
    "FaultSpec",
    "ProviderEmulator",
    "ProviderSettings",
    "RecordedFile",
    "RecordedRequest",
    "key_fingerprint",
    "serve",
]
