"""A local Azure Resource Manager emulator (HTTPS, LROs, faults, request log, durable state).

Imports nothing from the rest of ``azure_vm_operator``. See ``docs/emulator.md``.
"""

from .app import Emulator

__all__ = ["Emulator"]
