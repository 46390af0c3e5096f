"""Writing to the store: the households into the database and the configuration file,
both or (on any failure) neither; :func:`run_import` does every stage in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gridbot.importing.plan import Plan, household_scope, plan_import
from gridbot.importing.problems import ImportFailed
from gridbot.importing.sheets import Progress, read_tables
from gridbot.importing.toml_block import write_text_atomically
from gridbot.store.base import Household, Store


async def apply(plan: Plan, store: Store, now: datetime) -> None:
    """Write the households and the configuration: both, or (on any failure) neither."""
    async with store.transaction() as tx:
        if plan.households_removed:
            await tx.remove_households(plan.households_removed)
        if plan.households_added or plan.households_changed:
            await tx.put_households([*plan.households_added, *plan.households_changed], now)
        if plan.config_changed:
            # Last step inside the transaction: if it fails, the households roll back; if
            # the commit then fails, the old configuration is put back.
            write_text_atomically(plan.config_path, plan.new_text)


async def run_import(paths: Sequence[Path], config_path: Path, store: Store, now: datetime,
                     *, dry_run: bool, progress: Progress | None = None) -> Plan:
    tables, problems, skipped = read_tables(paths, progress)
    if problems:
        raise ImportFailed(problems)
    scope = household_scope(tables, config_path)
    existing: list[Household] = []
    if scope:
        async with store.transaction() as tx:
            existing = await tx.households(scope)
    plan = plan_import(config_path, tables, existing, skipped)
    if dry_run or plan.nothing:
        return plan
    try:
        await apply(plan, store, now)
    except BaseException:
        if plan.config_changed and plan.config_path.read_text(encoding="utf-8-sig") \
                == plan.new_text:
            write_text_atomically(plan.config_path, plan.old_text)
        raise
    return plan
