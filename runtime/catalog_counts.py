"""The catalog's item counts as stats() reports them, with on-device updates told apart.

A catalog holds the bundle's rows, then a row per item added on the device (catalog.py). An update of a bundle
item (update_items: a corrected title) retires the bundle row and adds a row under the same id, and a removed
added item keeps its row without a vector: counting rows called one corrected title "1 added, 1 removed" and
made adding then removing an item grow `items`. Counted per id instead:

- items: the live items, what can be recommended and recorded (rows minus inactive rows);
- added_items: live items added on the device under ids the bundle does not have;
- updated_items: bundle items an added item replaced, live (the bundle row retired, the id served);
- removed_items: ids removed and not replaced: bundle items retired with no live item under their id, and items
  added on the device and then removed.
"""

from __future__ import annotations


def catalog_counts(catalog) -> dict[str, int]:
    bundle_row = catalog.index.bundle_row
    added = updated = gone = emptied = 0
    for item in catalog.added:  # few: the items added on the device
        in_bundle = bundle_row(item.item_id) is not None
        if item.vector is not None:
            updated += in_bundle
            added += not in_bundle
        else:  # removed; a bundle id an added item had replaced is counted once, by its retired bundle row
            emptied += 1
            gone += not in_bundle
    inactive = len(catalog.inactive_rows())  # retired bundle rows, then removed added rows (kept per version)
    return {"items": len(catalog) - inactive, "added_items": added, "updated_items": updated,
            "removed_items": inactive - emptied - updated + gone}
