"""Assets (Airflow 2 "datasets"): accepted as task inlets/outlets, rejected as DAG schedules."""

from __future__ import annotations

from .errors import UnsupportedFeature


class BaseAsset:
    """Anything that can appear in an asset schedule expression."""

    def __and__(self, other):
        return AssetAll(self, other)

    def __or__(self, other):
        return AssetAny(self, other)


class Asset(BaseAsset):
    """A data asset; Leoflow records nothing about it (lineage is not tracked)."""

    def __init__(self, name=None, uri=None, *, group: str = "asset", extra=None, watchers=None):
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        self.name = name if name is not None else uri
        self.uri = uri if uri is not None else name
        self.group = group
        self.extra = extra or {}
        self.watchers = watchers or []

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r})"


Dataset = Asset


class AssetAlias(BaseAsset):
    def __init__(self, name: str, group: str = "asset"):
        self.name = name
        self.group = group


class AssetAll(BaseAsset):
    def __init__(self, *objects):
        self.objects = objects


class AssetAny(BaseAsset):
    def __init__(self, *objects):
        self.objects = objects


class Metadata:
    """Extra information attached to an asset event from inside a task."""

    def __init__(self, asset, extra: dict, alias=None):
        self.asset = asset
        self.extra = extra
        self.alias = alias


def asset(*args, **kwargs):
    raise UnsupportedFeature(
        "the @asset decorator", "it needs asset-driven scheduling; write a @dag with a cron or preset schedule"
    )


def reject_asset_schedule():
    raise UnsupportedFeature(
        "asset-triggered schedules (data-aware scheduling)",
        "use a cron, preset or timedelta schedule, or have the producing DAG start this one with TriggerDagRunOperator",
    )
