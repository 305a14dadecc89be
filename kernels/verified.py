"""The device kinds on which the kernels are the default: ``verified_devices.json`` beside this module.

``impl=None`` runs the Pallas kernels only on a device kind listed there, by a run of
the device check (``benchmarks/device_check.py``) on that hardware that found them
correct (the kernel tests compiled, a bitwise-deterministic backward pass) and faster
than the XLA path.  Everywhere else it runs XLA; ``impl="pallas"`` always runs them.
"""

from __future__ import annotations

import functools
import importlib.resources
import json

TABLE = "verified_devices.json"


@functools.cache
def verified_devices() -> dict[str, dict]:
    """{device kind: the record of the run that verified it} from the committed table."""
    text = importlib.resources.files(__package__).joinpath(TABLE).read_text()
    return dict(json.loads(text)["devices"])


def is_verified(device_kind: str) -> bool:
    """Whether impl=None may run the kernels on this device kind."""
    return device_kind in verified_devices()
