"""botbuilder's Storage interface over our SQLite store.

botbuilder ships no SQLite storage, and MemoryStorage forgets everything on restart.
This keeps Teams state (conversation references for proactive messages) in our
database. Only plain JSON data is stored: objects are turned into dicts first, and
anything that isn't plain data is refused rather than pickled.
"""
from __future__ import annotations

import json
from typing import Dict, List

from botbuilder.core import Storage, StoreItem


def _plain(value) -> dict:
    if isinstance(value, StoreItem):
        value = {k: v for k, v in vars(value).items()}
    elif hasattr(value, "serialize"):
        value = value.serialize()
    if not isinstance(value, dict):
        raise TypeError(f"can only store mappings of plain data, not {type(value).__name__}")
    json.dumps(value)  # raises TypeError for anything that is not plain data
    return value


class SQLiteBotStorage(Storage):
    def __init__(self, store):
        self.store = store

    async def read(self, keys: List[str]) -> Dict[str, dict]:
        return {key: {**value, "e_tag": str(etag)} for key, (value, etag) in self.store.read_state(list(keys)).items()}

    async def write(self, changes: Dict[str, object]):
        if changes is None:
            raise ValueError("changes are required when writing")
        for key, change in changes.items():
            value = dict(_plain(change))
            etag = value.pop("e_tag", None)
            expected = int(etag) if etag not in (None, "", "*") and str(etag).isdigit() else None
            self.store.write_state(key, value, expected)

    async def delete(self, keys: List[str]):
        self.store.delete_state(list(keys))
