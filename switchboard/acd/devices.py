"""Employees' desk phones as Asterisk names their devices, for the device states every
runtime reads: ARI subscribes to them (``deviceState:PJSIP/201``), FastAGI asks
``DEVICE_STATE(PJSIP/201)`` before it rings or queues."""

from __future__ import annotations

from switchboard.config.company import Company


def desk_devices(company: Company) -> dict[str, str]:
    """Employees' desk phones as Asterisk device names -> employee id: ``PJSIP/201``
    for ``PJSIP/{extension}``; ``Local/201@phones`` for ``Local/{extension}@phones/n``
    (a Local device is ``exten@context``, its options aside: main/core_local.c).  A
    phone reached through a trunk (``PJSIP/{extension}@office2``) is no device of this
    Asterisk's and is not followed."""
    template = company.config.asterisk.endpoints.employee
    devices = {}
    for employee in company.config.employees:
        if employee.extension is None:
            continue
        tech, _, resource = template.format(extension=employee.extension).partition("/")
        if tech.lower() == "local":
            resource = resource.split("/", 1)[0]
        elif "@" in resource or "/" in resource:
            continue
        if tech and resource:
            devices[f"{tech}/{resource}"] = employee.id
    return devices


def device_of(company: Company) -> dict[str, str]:
    """Employee id -> their desk phone's device name (`desk_devices` turned round), kept
    with the configuration snapshot."""
    key = ("desk_device_of",)
    found: dict[str, str] | None = company.derived.get(key)
    if found is None:
        found = company.derived[key] = {
            employee: device for device, employee in desk_devices(company).items()
        }
    return found
