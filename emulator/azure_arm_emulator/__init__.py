"""A local Azure Resource Manager emulator (HTTPS, LROs, faults, request log, durable state).

Its own distribution (``azure-arm-emulator``): imports nothing of the operator (``azure_vm_operator``).
See ``docs/emulator.md``.
"""

from .app import Emulator

__all__ = ["Emulator"]
