"""pytest plugin (entry point ``pytest11``): the ``imggen_emulator`` fixture.

```python
def test_generate(imggen_emulator):
    resource = OpenAIImageResource(api_key="sk-test", base_url=imggen_emulator.base_url("openai"))
    ...
    assert imggen_emulator.calls("openai", op="generate")
```
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import ProviderEmulator


@pytest.fixture
def imggen_emulator() -> Iterator[ProviderEmulator]:
    """A running ``ProviderEmulator`` with fresh state (function-scoped), on a free loopback port.

    Defaults: no latency, tasks finish in 0.05 s, AI Generate keeps its documented rate limit.
    """
    with ProviderEmulator(task_s=0.05) as emu:
        yield emu
