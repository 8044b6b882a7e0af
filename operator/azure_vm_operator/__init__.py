"""azure-vm-operator: Azure Virtual Machines and Scale Sets as Kubernetes custom resources."""

__version__ = "0.1.0"
