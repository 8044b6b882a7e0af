"""Built-in catalogue of VM sizes and marketplace images (what a single region offers in the emulator)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VmSize:
    name: str
    cores: int
    memory_mb: int
    max_data_disks: int
    resource_disk_mb: int
    premium_io: bool

    def to_json(self) -> dict[str, object]:
        """The shape of ``GET .../locations/{location}/vmSizes`` entries."""
        return {
            "name": self.name,
            "numberOfCores": self.cores,
            "osDiskSizeInMB": 1047552,
            "resourceDiskSizeInMB": self.resource_disk_mb,
            "memoryInMB": self.memory_mb,
            "maxDataDiskCount": self.max_data_disks,
        }


VM_SIZES: tuple[VmSize, ...] = (
    VmSize("Standard_A1_v2", 1, 2048, 2, 10240, False),
    VmSize("Standard_A2_v2", 2, 4096, 4, 20480, False),
    VmSize("Standard_A8m_v2", 8, 65536, 16, 81920, False),
    VmSize("Standard_B1s", 1, 1024, 2, 4096, True),
    VmSize("Standard_B1ms", 1, 2048, 2, 4096, True),
    VmSize("Standard_B2s", 2, 4096, 4, 8192, True),
    VmSize("Standard_B2ms", 2, 8192, 4, 16384, True),
    VmSize("Standard_B4ms", 4, 16384, 8, 32768, True),
    VmSize("Standard_D1_v2", 1, 3584, 4, 51200, False),
    VmSize("Standard_D2_v2", 2, 7168, 8, 102400, False),
    VmSize("Standard_DS1_v2", 1, 3584, 4, 7168, True),
    VmSize("Standard_DS2_v2", 2, 7168, 8, 14336, True),
    VmSize("Standard_DS3_v2", 4, 14336, 16, 28672, True),
    VmSize("Standard_D2s_v3", 2, 8192, 4, 16384, True),
    VmSize("Standard_D4s_v3", 4, 16384, 8, 32768, True),
    VmSize("Standard_D8s_v3", 8, 32768, 16, 65536, True),
    VmSize("Standard_D2s_v5", 2, 8192, 4, 0, True),
    VmSize("Standard_D4s_v5", 4, 16384, 8, 0, True),
    VmSize("Standard_D8s_v5", 8, 32768, 16, 0, True),
    VmSize("Standard_D2as_v5", 2, 8192, 4, 0, True),
    VmSize("Standard_D4as_v5", 4, 16384, 8, 0, True),
    VmSize("Standard_F2s_v2", 2, 4096, 4, 16384, True),
    VmSize("Standard_F4s_v2", 4, 8192, 8, 32768, True),
    VmSize("Standard_E2s_v3", 2, 16384, 4, 32768, True),
    VmSize("Standard_E4s_v3", 4, 32768, 8, 65536, True),
)

_SIZES_BY_NAME = {size.name.lower(): size for size in VM_SIZES}


def sizes_json() -> dict[str, object]:
    """``{"value": [...]}``: every size, as ``locations/{l}/vmSizes``, ``{VM}/vmSizes`` and
    ``{availability set}/vmSizes`` answer."""
    return {"value": [size.to_json() for size in VM_SIZES]}


def find_size(name: str | None) -> VmSize | None:
    return _SIZES_BY_NAME.get((name or "").lower())


@dataclass(frozen=True)
class PlatformImage:
    publisher: str
    offer: str
    sku: str
    os_type: str  # "Linux" | "Windows"
    hyper_v_generation: str  # "V1" | "V2"
    versions: tuple[str, ...]
    os_name: str
    os_version: str

    @property
    def latest(self) -> str:
        return max(self.versions, key=_version_key)

    def resolve(self, version: str | None) -> str | None:
        """The exact version for ``version`` (``latest`` or an existing one), or None."""
        if not version or version.lower() == "latest":
            return self.latest
        return version if version in self.versions else None

    def urn(self, version: str) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{version}"

    @property
    def os_disk_size_gb(self) -> int:
        """Size of the image's OS disk: the minimum ``osDisk.diskSizeGB`` of a VM created from it."""
        return 127 if self.os_type == "Windows" else 30


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _linux(publisher: str, offer: str, sku: str, gen: str, versions: tuple[str, ...], name: str, ver: str) -> PlatformImage:
    return PlatformImage(publisher, offer, sku, "Linux", gen, versions, name, ver)


def _windows(sku: str, gen: str, versions: tuple[str, ...], ver: str) -> PlatformImage:
    return PlatformImage("MicrosoftWindowsServer", "WindowsServer", sku, "Windows", gen, versions, "Windows Server", ver)


_JAMMY = ("22.04.202404100", "22.04.202409010", "22.04.202501140")
_NOBLE = ("24.04.202409120", "24.04.202502210")
_DEBIAN = ("0.20240901.1857", "0.20250212.2023")
_RHEL9 = ("9.4.2024081415", "9.5.2025011511")
_RHEL8 = ("8.10.2024070513", "8.10.2025012014")

PLATFORM_IMAGES: tuple[PlatformImage, ...] = (
    _linux("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "V2", _JAMMY, "ubuntu", "22.04"),
    _linux("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "V1", _JAMMY, "ubuntu", "22.04"),
    _linux("Canonical", "ubuntu-24_04-lts", "server", "V2", _NOBLE, "ubuntu", "24.04"),
    _linux("Canonical", "ubuntu-24_04-lts", "server-gen1", "V1", _NOBLE, "ubuntu", "24.04"),
    _linux("Canonical", "UbuntuServer", "18.04-LTS", "V1", ("18.04.202306070", "18.04.202401161"), "ubuntu", "18.04"),
    _linux("Canonical", "UbuntuServer", "16.04-LTS", "V1", ("16.04.202104140", "16.04.202109280"), "ubuntu", "16.04"),
    _linux("Debian", "debian-12", "12", "V1", _DEBIAN, "debian", "12"),
    _linux("Debian", "debian-12", "12-gen2", "V2", _DEBIAN, "debian", "12"),
    _linux("RedHat", "RHEL", "9-lvm-gen2", "V2", _RHEL9, "redhat", "9"),
    _linux("RedHat", "RHEL", "8-lvm-gen2", "V2", _RHEL8, "redhat", "8"),
    _windows("2022-datacenter-azure-edition", "V2", ("20348.2700.240905", "20348.3207.250210"), "10.0.20348"),
    _windows("2022-datacenter-g2", "V2", ("20348.2700.240905", "20348.3207.250210"), "10.0.20348"),
    _windows("2019-Datacenter", "V1", ("17763.6293.240905", "17763.6893.250210"), "10.0.17763"),
    _windows("2016-Datacenter", "V1", ("14393.7336.240830", "14393.7785.250210"), "10.0.14393"),
)

_IMAGES = {(i.publisher.lower(), i.offer.lower(), i.sku.lower()): i for i in PLATFORM_IMAGES}


def find_image(publisher: str | None, offer: str | None, sku: str | None) -> PlatformImage | None:
    return _IMAGES.get(((publisher or "").lower(), (offer or "").lower(), (sku or "").lower()))


# regions, zones and disk types ------------------------------------------------------------------------------------

#: Regions with availability zones (what the emulator offers); every other region has none.
ZONAL_REGIONS: dict[str, tuple[str, ...]] = {
    region: ("1", "2", "3")
    for region in (
        "westeurope", "northeurope", "eastus", "eastus2", "westus2", "westus3", "centralus", "southcentralus",
        "uksouth", "francecentral", "germanywestcentral", "swedencentral", "japaneast", "australiaeast",
        "southeastasia",
    )
}


def region_zones(location: str | None) -> tuple[str, ...]:
    """The availability zones of a region (``()`` when it has none)."""
    return ZONAL_REGIONS.get((location or "").replace(" ", "").lower(), ())


#: Managed disk SKUs (``managedDisk.storageAccountType``) and their tier.
DISK_SKUS: dict[str, str] = {
    "Standard_LRS": "Standard",
    "StandardSSD_LRS": "Standard",
    "StandardSSD_ZRS": "Standard",
    "Premium_LRS": "Premium",
    "Premium_ZRS": "Premium",
    "PremiumV2_LRS": "Premium",
    "UltraSSD_LRS": "Ultra",
}
#: SKUs that need a premium-storage capable size (the ``s`` in ``Standard_D2s_v5``).
PREMIUM_DISK_SKUS = frozenset({"Premium_LRS", "Premium_ZRS", "PremiumV2_LRS", "UltraSSD_LRS"})
#: SKUs that cannot hold an OS disk.
DATA_ONLY_DISK_SKUS = frozenset({"PremiumV2_LRS", "UltraSSD_LRS"})


def canonical_disk_sku(name: str | None) -> str | None:
    """The canonical spelling of a disk SKU (case-insensitive), or None if unknown."""
    lowered = (name or "").lower()
    return next((sku for sku in DISK_SKUS if sku.lower() == lowered), None)


_PREMIUM_TIERS = ((4, "P1"), (8, "P2"), (16, "P3"), (32, "P4"), (64, "P6"), (128, "P10"), (256, "P15"), (512, "P20"),
                  (1024, "P30"), (2048, "P40"), (4096, "P50"), (8192, "P60"), (16384, "P70"))


def premium_tier(size_gb: int) -> str:
    """The performance tier of a Premium SSD of that size (``P4`` for 32 GiB, ...)."""
    return next((tier for limit, tier in _PREMIUM_TIERS if size_gb <= limit), "P80")
