"""Employees' desk phones as Asterisk names their devices, for the device states every
runtime reads: ARI subscribes to them (``deviceState:PJSIP/201``), FastAGI asks
``DEVICE_STATE(PJSIP/201)`` before it rings or queues."""

from __future__ import annotations

from switchboard.config.company import Company


def elsewhere(company: Company, employee_id: str | None, instance: str | None) -> str | None:
    """The instance next to the Asterisk ``employee_id``'s desk phone is on, when that is
    not ``instance`` (`employees[].asterisk`); None: the phone is on this Asterisk."""
    if employee_id is None or instance is None:
        return None
    employee = company.employees.get(employee_id)
    home = employee.asterisk if employee is not None else None
    return home if home is not None and home != instance else None


def desk_devices(company: Company, instance: str | None = None) -> dict[str, str]:
    """Employees' desk phones as Asterisk device names -> employee id: ``PJSIP/201``
    for ``PJSIP/{extension}``; ``Local/201@phones`` for ``Local/{extension}@phones/n``
    (a Local device is ``exten@context``, its options aside: main/core_local.c).  A
    phone reached through a trunk (``PJSIP/{extension}@office2``), or on another
    instance's Asterisk (`elsewhere`), is no device of this Asterisk's and is not
    followed here (with shared agents, that instance tells its state)."""
    template = company.config.asterisk.endpoints.employee
    devices = {}
    for employee in company.config.employees:
        if employee.extension is None or elsewhere(company, employee.id, instance):
            continue
        tech, _, resource = template.format(extension=employee.extension).partition("/")
        if tech.lower() == "local":
            resource = resource.split("/", 1)[0]
        elif "@" in resource or "/" in resource:
            continue
        if tech and resource:
            devices[f"{tech}/{resource}"] = employee.id
    return devices


def device_of(company: Company, instance: str | None = None) -> dict[str, str]:
    """Employee id -> their desk phone's device name (`desk_devices` turned round), kept
    with the configuration snapshot."""
    key = ("desk_device_of", instance)
    found: dict[str, str] | None = company.derived.get(key)
    if found is None:
        found = company.derived[key] = {
            employee: device for device, employee in desk_devices(company, instance).items()
        }
    return found
