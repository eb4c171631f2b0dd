from monitor.reports.cache import ByteLRU


def test_evicts_least_recently_used_by_bytes() -> None:
    c: ByteLRU[str] = ByteLRU(100)
    c.put("a", "A", 40)
    c.put("b", "B", 40)
    assert c.get("a") == "A"  # a is now the most recent
    c.put("c", "C", 40)
    assert c.get("b") is None and c.get("a") == "A" and c.get("c") == "C"
    assert c.used == 80


def test_oversized_items_are_not_kept_and_refresh_replaces() -> None:
    c: ByteLRU[str] = ByteLRU(100)
    c.put("big", "X", 101)
    assert c.get("big") is None and c.used == 0
    c.put("a", "A", 30)
    c.put("a", "A2", 50)
    assert c.get("a") == "A2" and c.used == 50 and len(c) == 1
